// The ops API client. The token lives in this tab's sessionStorage (gone
// when the tab closes) and goes only into the Authorization header; no
// cookie is sent or accepted.
import { t } from './i18n.js';

const KEY = 'certlife.ops.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(tok) {
  if (tok) sessionStorage.setItem(KEY, tok);
  else sessionStorage.removeItem(KEY);
}

// ApiError is a failed call: status 0 when the server was not reached;
// problem is the RFC 9457 document (title, detail, errors[{field, message}]).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || ('HTTP ' + status));
    this.status = status;
    this.problem = problem;
  }
}

let unauthorized = () => {};
// onUnauthorized sets what a 401 does (sign the console out).
export function onUnauthorized(fn) { unauthorized = fn; }

// call sends one request. opts: json (a value sent as JSON), or body and
// type (e.g. CSV text); tok overrides the stored token (sign-in).
export async function call(method, path, opts = {}) {
  const headers = { 'Authorization': 'Bearer ' + (opts.tok ?? token()), 'Accept': 'application/json, application/problem+json' };
  let body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = opts.type;
    body = opts.body;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error' });
  } catch (e) {
    throw new ApiError(0, { title: t('error.network'), detail: String(e) });
  }
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data : { title: res.statusText || t('error.status', { status: res.status }), status: res.status };
    problem.retryAfter = res.headers.get('Retry-After');
    const err = new ApiError(res.status, problem);
    if (res.status === 401 && opts.tok === undefined) unauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, json) => call('POST', path, json === undefined ? {} : { json });
export const del = (path) => call('DELETE', path);

// query builds "?a=1&b=2" from the non-empty values of obj.
export function query(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// seg escapes one path segment.
export const seg = (s) => encodeURIComponent(String(s));
