// Review queue (OP-1): every pending review with all the evidence the
// review API gives, the organization's validation records, and approve /
// reject with a reason.
import { t } from '../i18n.js';
import { get, post, query, seg } from '../api.js';
import { organizationView, applicantView } from './evidence.js';
import { h, clear, kv, table, time, label, val, field, select, showProblem, clearErrors, notice, busy } from '../ui.js';

function approvals(list) {
  return table([
    { label: t('f.at'), cell: (a) => time(a.approved_at) },
    { label: t('f.applicant'), cell: (a) => [a.applicant_name_en, h('br'), h('span', { class: 'muted' }, a.applicant_email)] },
    { label: t('f.product') + ' / ' + t('f.kind'), cell: (a) => a.product + ' / ' + a.kind },
    { label: t('f.application'), cell: (a) => h('a', { href: '/ops/applications?id=' + seg(a.application_id), data: { link: '' } }, a.application_id) },
    { label: t('f.previous_certificate_id'), cell: (a) => val(a.previous_certificate_id) },
    { label: t('f.by'), cell: (a) => a.approved_by },
  ], list);
}

// validations loads the validation records (VA-9) about the organization's
// registry number, when it has one; client applications may have none.
async function validations(box, org) {
  const code = org && org.company_code;
  if (!code || !/^[0-9]{9}$/.test(code.replace(/-/g, ''))) {
    box.append(h('p', { class: 'muted' }, t('reviews.validations.none')));
    return;
  }
  try {
    const page = await get('/ops/v1/validations' + query({ organization: code, limit: 20 }));
    const list = page.validations || [];
    if (list.length === 0) {
      box.append(h('p', { class: 'muted' }, t('reviews.validations.none')));
      return;
    }
    box.append(table([
      { label: t('f.at'), cell: (v) => time(v.at) },
      { label: t('dl.kind'), cell: (v) => v.kind },
      { label: t('f.subject'), cell: (v) => v.subject },
      { label: t('reviews.method.name'), cell: (v) => v.method },
      { label: t('reviews.method.result'), cell: (v) => h('span', { class: 'badge ' + (v.result === 'passed' ? 'ok' : 'bad') }, v.result) },
      { label: t('f.details'), cell: (v) => val(v.detail) },
    ], list));
  } catch (err) {
    showProblem(box, err);
  }
}

function card(r) {
  const ev = r.evidence || {};
  const org = ev.organization || {};
  const pay = ev.payment || {};
  const el = h('article', { class: 'card review', data: { review: r.id, application: r.application_id, status: r.status } });
  const status = h('span', { class: 'badge status' }, label('status.', r.status));
  el.append(
    h('h2', {}, org.name_ja || org.name_en || r.application_id, status),
    h('div', { class: 'grid2' },
      h('div', {},
        kv([
          [t('f.application_id'), h('a', { href: '/ops/applications?id=' + seg(r.application_id), data: { link: '' } }, r.application_id)],
          [t('f.product') + ' / ' + t('f.kind'), (r.product || '—') + ' / ' + (r.kind || '—')],
          [t('f.language'), val(ev.language)],
          [t('reviews.final'), time(r.final_at)],
          [t('reviews.queued'), time(r.pending_at)],
          [t('f.previous_certificate_id'), ev.previous_certificate_id || undefined],
          [t('f.reissue_reason'), ev.reissue_reason || undefined],
        ]),
        h('h3', {}, t('f.organization')), organizationView(ev.organization),
        h('h3', {}, t('reviews.payment')),
        kv([[t('reviews.paid'), pay.paid ? t('yes') : t('no')], [t('reviews.method'), pay.method || undefined],
          [t('reviews.reference'), pay.reference || undefined], [t('f.at'), pay.paid_at ? time(pay.paid_at) : undefined]])),
      h('div', {}, h('h3', {}, t('f.applicant')), applicantView(ev.applicant))),
    h('h3', {}, t('reviews.previous')), approvals(ev.previous_approvals || []));
  const vbox = h('div', { class: 'validations' });
  el.append(h('h3', {}, t('reviews.validations')), vbox);
  validations(vbox, ev.organization);

  if (r.decision) {
    el.append(h('h3', {}, t('reviews.decision')),
      kv([[t('f.by'), r.decision.by], [t('f.at'), time(r.decision.at)], [t('f.reason'), r.decision.reason || undefined]]));
  }
  if (r.status !== 'pending') return el;

  const reason = h('textarea', { rows: 2, cols: 40 });
  const approve = h('button', { type: 'button', data: { action: 'approve' } }, t('reviews.approve'));
  const reject = h('button', { type: 'button', class: 'danger', data: { action: 'reject' } }, t('reviews.reject'));
  const actions = h('div', { class: 'actions decide' }, approve,
    h('div', { class: 'reject' }, field('reason', t('f.reason'), reason, t('reviews.reason.help')), reject));
  el.append(actions);
  const decided = (res, text) => {
    el.dataset.status = res.status;
    status.textContent = label('status.', res.status);
    actions.replaceWith(notice(text));
  };
  approve.addEventListener('click', () => busy(approve, async () => {
    clearErrors(el);
    try {
      decided(await post('/ops/v1/reviews/' + seg(r.id) + '/approve'), t('reviews.approved'));
    } catch (err) {
      showProblem(actions, err);
    }
  }));
  // The reason is checked by the API (required, bounded): its field error
  // shows next to the box.
  reject.addEventListener('click', () => busy(reject, async () => {
    clearErrors(el);
    try {
      decided(await post('/ops/v1/reviews/' + seg(r.id) + '/reject', { reason: reason.value }), t('reviews.rejected'));
    } catch (err) {
      showProblem(actions, err);
    }
  }));
  return el;
}

export default {
  id: 'reviews',
  nav: 'nav.reviews',
  desc: 'desc.reviews',
  roles: ['reviewer'],
  async render(root, ctx) {
    const status = ctx.params.get('status') || 'pending';
    const pick = select(['pending', 'approved', 'rejected'].map((s) => [s, label('status.', s)]), status);
    const list = h('div', { id: 'reviews', 'aria-busy': 'true' }, h('p', { class: 'muted' }, t('loading')));
    const load = async () => {
      list.setAttribute('aria-busy', 'true');
      const res = await get('/ops/v1/reviews' + query({ status: pick.value }));
      if (!ctx.alive()) return;
      clear(list);
      const reviews = res.reviews || [];
      if (reviews.length === 0) list.append(h('p', { class: 'muted', id: 'reviews-empty' }, t('reviews.empty')));
      for (const r of reviews) list.append(card(r));
      list.setAttribute('aria-busy', 'false');
    };
    pick.addEventListener('change', () => ctx.go('/ops/reviews' + query({ status: pick.value === 'pending' ? '' : pick.value })));
    const refresh = h('button', { type: 'button', class: 'secondary', on: { click: () => load().catch((e) => showProblem(root, e)) } }, t('refresh'));
    root.append(h('h1', {}, t('reviews.title')),
      h('div', { class: 'actions' }, field('status', t('reviews.show'), pick), refresh), list);
    await load();
  },
};
