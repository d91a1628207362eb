// Application search and timeline: by a part of the e-mail, status or ID
// (GET /ops/v1/applications), one application with its timeline.
import { t } from '../i18n.js';
import { get, query, seg } from '../api.js';
import { h, kv, table, time, label, val, field, select, showProblem, clearErrors } from '../ui.js';
import { organizationView, applicantView } from './evidence.js';

const statuses = ['provisional', 'cancelled', 'accepted', 'awaiting_payment', 'validating', 'in_review', 'approved', 'issued', 'rejected'];

function detail(root, a) {
  root.append(
    h('p', {}, h('a', { href: '/ops/applications', data: { link: '' } }, '← ' + t('apps.back'))),
    h('article', { class: 'card application', data: { application: a.id, status: a.status } },
      h('h2', {}, a.id, h('span', { class: 'badge status' }, label('status.', a.status))),
      h('div', { class: 'grid2' },
        h('div', {},
          kv([
            [t('f.product') + ' / ' + t('f.kind'), a.product + ' / ' + a.kind],
            [t('f.language'), a.language],
            [t('f.accepted_at'), time(a.accepted_at)],
            [t('f.cancel_deadline'), time(a.cancel_deadline)],
            [t('f.closed_at'), a.closed_at ? time(a.closed_at) : undefined],
            [t('f.certificate_id'), a.certificate_id || undefined],
            [t('f.previous_certificate_id'), a.previous_certificate_id || undefined],
            [t('f.reissue_reason'), a.reissue_reason || undefined],
            [t('f.rejection_reason'), a.rejection_reason || undefined],
          ]),
          h('h3', {}, t('f.organization')), organizationView(a.organization)),
        h('div', {}, h('h3', {}, t('f.applicant')), applicantView(a.applicant))),
      h('h3', {}, t('apps.timeline')),
      table([
        { label: t('f.at'), cell: (e) => time(e.at) },
        { label: t('apps.event'), cell: (e) => e.event },
      ], a.timeline, (e) => ({ data: { event: e.event } }))));
}

export default {
  id: 'applications',
  nav: 'nav.applications',
  desc: 'desc.applications',
  roles: ['reviewer'],
  async render(root, ctx) {
    const p = ctx.params;
    root.append(h('h1', {}, t('apps.title')));
    if (p.get('id') && !p.get('email') && !p.get('status') && !p.get('before')) {
      return detail(root, await get('/ops/v1/applications/' + seg(p.get('id'))));
    }
    const email = h('input', { type: 'search', value: p.get('email') || '', size: 32 });
    const status = select([['', t('any')], ...statuses.map((s) => [s, label('status.', s)])], p.get('status') || '');
    const id = h('input', { type: 'search', value: p.get('id') || '', size: 38 });
    const form = h('form', { class: 'inline card', id: 'app-search' },
      field('email', t('f.email'), email, t('apps.email.help')),
      field('status', t('f.status'), status),
      field('id', t('f.application_id'), id),
      h('div', { class: 'field' }, h('button', { type: 'submit' }, t('search'))));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      ctx.go('/ops/applications' + query({ email: email.value.trim(), status: status.value, id: id.value.trim() }));
    });
    const results = h('div', { id: 'app-results' });
    root.append(form, results);
    const filters = { email: p.get('email'), status: p.get('status'), id: p.get('id') };
    let page;
    try {
      page = await get('/ops/v1/applications' + query({ ...filters, before: p.get('before') }));
    } catch (err) {
      showProblem(form, err);
      return;
    }
    clearErrors(form);
    const list = page.applications || [];
    if (list.length === 0) {
      results.append(h('p', { class: 'muted' }, t('apps.empty')));
    } else {
      results.append(h('div', { class: 'card' }, table([
        { label: t('f.accepted_at'), cell: (a) => time(a.accepted_at) },
        { label: t('f.application_id'), cell: (a) => h('a', { href: '/ops/applications?id=' + seg(a.id), data: { link: '' } }, a.id) },
        { label: t('f.status'), cell: (a) => h('span', { class: 'badge status' }, label('status.', a.status)) },
        { label: t('f.product') + ' / ' + t('f.kind'), cell: (a) => a.product + ' / ' + a.kind },
        { label: t('f.organization'), cell: (a) => val(a.organization && (a.organization.name_ja || a.organization.name_en)) },
        { label: t('f.applicant'), cell: (a) => [val(a.applicant && a.applicant.name_ja), h('br'), h('span', { class: 'muted' }, val(a.applicant && a.applicant.email))] },
      ], list, (a) => ({ data: { application: a.id, status: a.status } }))));
    }
    const paging = h('div', { class: 'actions' });
    if (p.get('before')) paging.append(h('a', { href: '/ops/applications' + query(filters), data: { link: '' } }, t('first')));
    if (page.next) paging.append(h('a', { href: '/ops/applications' + query({ ...filters, before: page.next }), data: { link: '' }, id: 'app-next' }, t('next')));
    results.append(paging);
  },
};
