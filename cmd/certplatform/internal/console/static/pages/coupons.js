// Coupon import (BI-1): a CSV file (or pasted text) to POST /ops/v1/coupons;
// the lines not imported are listed with their reason.
import { t } from '../i18n.js';
import { call } from '../api.js';
import { h, clear, table, field, showProblem, clearErrors, notice } from '../ui.js';

export default {
  id: 'coupons',
  nav: 'nav.coupons',
  desc: 'desc.coupons',
  roles: ['billing'],
  async render(root) {
    const file = h('input', { type: 'file', accept: '.csv,text/csv' });
    const text = h('textarea', { rows: 6, cols: 60, spellcheck: 'false', placeholder: 'number,product,expires_at' });
    const result = h('div', { id: 'coupon-result' });
    const form = h('form', { class: 'card', id: 'coupon-import' },
      h('p', { class: 'muted' }, t('coupons.help')),
      field('file', t('coupons.file'), file),
      field('csv', t('coupons.paste'), text),
      h('button', { type: 'submit' }, t('coupons.import')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      clear(result);
      const body = file.files.length > 0 ? await file.files[0].text() : text.value;
      if (body.trim() === '') {
        showProblem(form, { problem: { title: t('coupons.nothing') } });
        return;
      }
      try {
        const res = await call('POST', '/ops/v1/coupons', { body, type: 'text/csv' });
        result.append(notice(t('coupons.result', { n: res.imported, batch: res.batch_id })));
        if ((res.rejected || []).length > 0) {
          result.append(h('div', { class: 'card' }, h('h2', {}, t('coupons.rejected')), table([
            { label: t('f.line'), cell: (r) => String(r.line) },
            { label: t('f.error'), cell: (r) => r.error },
          ], res.rejected, (r) => ({ data: { line: String(r.line) } }))));
        }
      } catch (err) {
        showProblem(form, err);
      }
    });
    root.append(h('h1', {}, t('coupons.title')), form, result);
  },
};
