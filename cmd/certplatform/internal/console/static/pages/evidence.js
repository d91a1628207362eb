// Views of an application's organization and applicant, shared by the
// review queue and the application search.
import { t } from '../i18n.js';
import { h, kv } from '../ui.js';

export function organizationView(o) {
  if (!o) return t('dash');
  return kv([
    [t('f.name_ja'), o.name_ja], [t('f.name_en'), o.name_en],
    [t('f.company_code'), o.company_code],
    [t('f.identifier'), o.identifier || h('span', { class: 'muted' }, t('f.not_given'))],
  ]);
}

export function applicantView(a) {
  if (!a) return t('dash');
  const ad = a.address || {};
  const address = [ad.postal_code && '〒' + ad.postal_code, ad.prefecture, ad.city, ad.street, ad.building].filter(Boolean).join(' ');
  return kv([
    [t('f.person_ja'), a.name_ja], [t('f.person_en'), a.name_en],
    [t('f.title_ja'), a.title_ja], [t('f.department_ja'), a.department_ja], [t('f.title_en'), a.title_en],
    [t('f.email'), a.email], [t('f.phone'), a.phone], [t('f.address'), address],
  ]);
}
