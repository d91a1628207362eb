// The console's pages, in menu order. Each page module exports
// {id, nav, desc, roles, render(root, ctx)}: id is its path under /ops/,
// nav and desc are i18n keys, roles are the roles that may use it (admin
// always may; the API enforces the same), and render fills root, with
// ctx = {who, params (the URL's query), go(url), alive()}.
import reviews from './reviews.js';
import applications from './applications.js';
import maintenance from './maintenance.js';
import coupons from './coupons.js';
import deadletters from './deadletters.js';
import audit from './audit.js';
import revocation from './revocation.js';
import mass from './mass-revocation.js';

export const pages = [reviews, applications, maintenance, coupons, deadletters, audit, revocation, mass];
