// Maintenance windows (PC-5): list, add, delete.
import { t } from '../i18n.js';
import { get, post, del, seg } from '../api.js';
import { h, clear, table, time, field, showProblem, clearErrors, notice, busy } from '../ui.js';

// rfc3339 turns a datetime-local value (the reader's time zone) into an
// instant; anything else is sent as typed, for the API to judge.
function rfc3339(v) {
  if (!v) return undefined;
  const d = new Date(v);
  return isNaN(d) ? v : d.toISOString();
}

export default {
  id: 'maintenance',
  nav: 'nav.maintenance',
  desc: 'desc.maintenance',
  roles: ['admin'],
  async render(root, ctx) {
    const list = h('div', { id: 'windows', class: 'card' });
    const message = h('div');
    const load = async () => {
      const res = await get('/ops/v1/maintenance-windows');
      if (!ctx.alive()) return;
      clear(list);
      const windows = res.windows || [];
      if (windows.length === 0) {
        list.append(h('p', { class: 'muted' }, t('maint.empty')));
        return;
      }
      list.append(table([
        { label: t('maint.starts_at'), cell: (w) => time(w.starts_at) },
        { label: t('maint.ends_at'), cell: (w) => time(w.ends_at) },
        { label: t('f.by'), cell: (w) => w.created_by },
        { label: t('f.created_at'), cell: (w) => time(w.created_at) },
        {
          label: '', cell: (w) => {
            const b = h('button', { type: 'button', class: 'danger', data: { action: 'delete' } }, t('maint.delete'));
            b.addEventListener('click', () => busy(b, async () => {
              clearErrors(root);
              try {
                await del('/ops/v1/maintenance-windows/' + seg(w.id));
                clear(message).append(notice(t('maint.deleted')));
                await load();
              } catch (err) {
                showProblem(message, err);
              }
            }));
            return b;
          },
        },
      ], windows, (w) => ({ data: { window: w.id } })));
    };
    const starts = h('input', { type: 'datetime-local', step: 60 });
    const ends = h('input', { type: 'datetime-local', step: 60 });
    const add = h('form', { class: 'inline card', id: 'add-window' },
      field('starts_at', t('maint.starts_at'), starts),
      field('ends_at', t('maint.ends_at'), ends),
      h('div', { class: 'field' }, h('button', { type: 'submit' }, t('maint.add'))));
    add.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(add);
      clear(message);
      try {
        await post('/ops/v1/maintenance-windows', { starts_at: rfc3339(starts.value), ends_at: rfc3339(ends.value) });
        message.append(notice(t('maint.added')));
        starts.value = ends.value = '';
        await load();
      } catch (err) {
        showProblem(add, err);
      }
    });
    root.append(h('h1', {}, t('maint.title')), h('p', { class: 'muted' }, t('maint.help')), add, message, list);
    await load();
  },
};
