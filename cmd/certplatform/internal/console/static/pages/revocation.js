// Revocation of one certificate by serial (IS-6).
import { t } from '../i18n.js';
import { post } from '../api.js';
import { h, clear, kv, field, select, showProblem, clearErrors, notice, label } from '../ui.js';

export const reasons = ['superseded', 'keyCompromise', 'cessationOfOperation', 'affiliationChanged', 'privilegeWithdrawn'];

export function reasonSelect() {
  return select(reasons.map((r) => [r, label('reason.', r)]), 'superseded');
}

// result shows what the API answered, field by field.
export function result(obj) {
  return kv(Object.entries(obj || {}).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)]));
}

export default {
  id: 'revocation',
  nav: 'nav.revocation',
  desc: 'desc.revocation',
  roles: ['admin'],
  async render(root) {
    const serial = h('input', { type: 'text', size: 44, spellcheck: 'false', autocomplete: 'off' });
    const reason = reasonSelect();
    const out = h('div', { id: 'revocation-result' });
    const form = h('form', { class: 'inline card', id: 'revoke' },
      field('serial', t('f.serial'), serial),
      field('reason', t('f.reason'), reason),
      h('div', { class: 'field' }, h('button', { type: 'submit', class: 'danger' }, t('revoke.submit'))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      clear(out);
      try {
        const res = await post('/ops/v1/revocations', { serial: serial.value.trim(), reason: reason.value });
        out.append(notice(t('revoke.done')), h('div', { class: 'card' }, result(res)));
      } catch (err) {
        showProblem(form, err);
      }
    });
    root.append(h('h1', {}, t('revoke.title')), form, out);
  },
};
