// The audit log (OP-4): filters, paging per service, and verification of
// every service's hash chain.
import { t } from '../i18n.js';
import { get, query } from '../api.js';
import { h, clear, table, time, json, field, select, showProblem, clearErrors, val } from '../ui.js';

const services = ['intake', 'validation', 'billing', 'issuer', 'notifier'];
const filterNames = ['service', 'action', 'actor', 'subject', 'since', 'until', 'limit'];

function local(iso) {
  // An RFC 3339 instant as a datetime-local value in the reader's zone.
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
}

function instant(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? v : d.toISOString();
}

function entries(list) {
  return table([
    { label: '#', cell: (e) => String(e.seq) },
    { label: t('f.at'), cell: (e) => time(e.at) },
    { label: t('f.actor'), cell: (e) => e.actor },
    { label: t('f.action'), cell: (e) => e.action },
    { label: t('f.subject'), cell: (e) => val(e.subject) },
    { label: t('f.details'), cell: (e) => e.details && Object.keys(e.details).length ? h('details', {}, h('summary', {}, t('f.details')), json(e.details)) : t('dash') },
  ], list, (e) => ({ data: { seq: String(e.seq), action: e.action } }));
}

async function verify(box) {
  clear(box);
  try {
    const res = await get('/ops/v1/audit/verify');
    box.append(h('div', { class: res.ok ? 'notice' : 'problem', id: 'verify-result', data: { ok: String(res.ok) } }, t(res.ok ? 'audit.ok' : 'audit.broken')),
      table([
        { label: t('f.service'), cell: (s) => s.service },
        { label: '', cell: (s) => h('span', { class: 'badge ' + (s.ok ? 'ok' : 'bad') }, t(s.ok ? 'audit.intact' : 'audit.tampered')) },
        { label: t('audit.entries'), cell: (s) => String(s.entries ?? '') },
        { label: t('audit.head'), cell: (s) => s.head_seq ? '#' + s.head_seq : t('dash') },
        { label: t('audit.broken_at'), cell: (s) => s.broken_seq ? '#' + s.broken_seq : t('dash') },
        { label: t('f.error'), cell: (s) => val(s.problem || s.error) },
      ], res.services || [], (s) => ({ data: { service: s.service, ok: String(!!s.ok) } })));
  } catch (err) {
    showProblem(box, err);
  }
}

export default {
  id: 'audit',
  nav: 'nav.audit',
  desc: 'desc.audit',
  roles: ['admin'],
  async render(root, ctx) {
    const p = ctx.params;
    const inputs = {
      service: select([['', t('any')], ...services.map((s) => [s, s])], p.get('service') || ''),
      action: h('input', { type: 'text', value: p.get('action') || '', placeholder: 'review.' }),
      actor: h('input', { type: 'text', value: p.get('actor') || '', placeholder: 'ops:…' }),
      subject: h('input', { type: 'text', value: p.get('subject') || '' }),
      since: h('input', { type: 'datetime-local', value: local(p.get('since')) }),
      until: h('input', { type: 'datetime-local', value: local(p.get('until')) }),
      limit: h('input', { type: 'number', min: 1, max: 1000, value: p.get('limit') || '100' }),
    };
    const labels = { service: t('f.service'), action: t('f.action'), actor: t('f.actor'), subject: t('f.subject'), since: t('audit.since'), until: t('audit.until'), limit: t('audit.limit') };
    const form = h('form', { class: 'inline card', id: 'audit-filter' },
      filterNames.map((n) => field(n, labels[n], inputs[n])),
      h('div', { class: 'field' }, h('button', { type: 'submit' }, t('search'))));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = {};
      for (const n of filterNames) q[n] = n === 'since' || n === 'until' ? instant(inputs[n].value) : inputs[n].value.trim();
      ctx.go('/ops/audit' + query(q));
    });
    const verifyBox = h('div', { id: 'verify' });
    const verifyButton = h('button', { type: 'button', id: 'verify-button', class: 'secondary', on: { click: () => verify(verifyBox) } }, t('audit.verify'));
    const results = h('div', { id: 'audit-results' });
    root.append(h('h1', {}, t('audit.title')), h('div', { class: 'card' }, verifyButton, verifyBox), form, results);

    const filters = {};
    for (const n of filterNames) filters[n] = p.get(n) || '';
    let res;
    try {
      res = await get('/ops/v1/audit' + query(filters));
    } catch (err) {
      showProblem(form, err);
      return;
    }
    clearErrors(form);
    for (const s of res.services || []) {
      const sec = h('section', { class: 'card', data: { service: s.service } }, h('h2', {}, s.service));
      if (s.error) sec.append(h('p', { class: 'problem' }, s.error));
      const body = h('div');
      body.append(entries(s.entries));
      sec.append(body);
      // Paging is per service: the next page of this one continues after
      // its last sequence number.
      let next = s.next_after;
      const more = h('button', { type: 'button', class: 'secondary', hidden: !next }, t('more'));
      more.addEventListener('click', async () => {
        try {
          const r = await get('/ops/v1/audit' + query({ ...filters, service: s.service, after: next }));
          const page = (r.services || [])[0] || {};
          body.append(entries(page.entries || []));
          next = page.next_after;
          more.hidden = !next;
        } catch (err) {
          showProblem(sec, err);
        }
      });
      sec.append(more);
      results.append(sec);
    }
  },
};
