// What the runtime set aside (EV-3): dead letters (replay), outbox rows
// JetStream refused (replay), timers parked after repeated failures
// (retry). Each section lists what every service answered.
import { t } from '../i18n.js';
import { get, post, seg } from '../api.js';
import { h, clear, table, time, json, showProblem, notice, busy } from '../ui.js';

function eventCell(ev) {
  if (!ev) return t('dash');
  return h('details', {}, h('summary', {}, t('dl.event')), json(ev));
}

// section renders one list with an action button per row.
function section(id, titleKey, path, key, columns, action) {
  const box = h('section', { class: 'card', id });
  const body = h('div');
  const message = h('div');
  const load = async () => {
    const res = await get(path);
    clear(body);
    if (res.unanswered && res.unanswered.length) {
      body.append(h('p', { class: 'refusal' }, t('dl.unanswered', { services: res.unanswered.map((u) => u.service + ' (' + u.error + ')').join(', ') })));
    }
    const rows = res[key] || [];
    body.append(table([...columns, {
      label: '', cell: (row) => {
        const b = h('button', { type: 'button', data: { action: action.name }, disabled: action.disabled ? action.disabled(row) : false }, t(action.label));
        b.addEventListener('click', () => busy(b, async () => {
          clear(message);
          try {
            await post(action.path(row));
            message.append(notice(t(action.done)));
            await load();
          } catch (err) {
            showProblem(message, err);
          }
        }));
        return b;
      },
    }], rows));
  };
  const refresh = h('button', { type: 'button', class: 'secondary', on: { click: () => load().catch((e) => showProblem(message, e)) } }, t('refresh'));
  box.append(h('h2', {}, t(titleKey), ' ', refresh), message, body);
  return { box, load: () => load().catch((e) => showProblem(message, e)) };
}

export default {
  id: 'dead-letters',
  nav: 'nav.deadletters',
  desc: 'desc.deadletters',
  roles: ['admin'],
  async render(root) {
    const dead = section('dead-letters', 'dl.dead', '/ops/v1/dead-letters', 'dead_letters', [
      { label: 'ID', cell: (d) => String(d.id) },
      { label: t('f.at'), cell: (d) => time(d.at) },
      { label: t('dl.consumer'), cell: (d) => d.consumer },
      { label: t('f.subject'), cell: (d) => d.subject },
      { label: t('f.error'), cell: (d) => [d.error, d.stack ? h('details', {}, h('summary', {}, 'stack'), h('pre', {}, d.stack)) : null] },
      { label: t('dl.deliveries'), cell: (d) => d.deliveries + ' / ' + d.failures },
      { label: t('dl.event'), cell: (d) => eventCell(d.event) },
    ], { name: 'replay', label: 'dl.replay', done: 'dl.replayed', path: (d) => '/ops/v1/dead-letters/' + seg(d.id) + '/replay' });
    const quarantine = section('quarantine', 'dl.quarantine', '/ops/v1/outbox-quarantine', 'quarantined', [
      { label: t('f.service'), cell: (q) => q.service },
      { label: 'ID', cell: (q) => String(q.id) },
      { label: t('dl.type'), cell: (q) => q.type },
      { label: t('f.subject'), cell: (q) => q.subject },
      { label: t('dl.bytes'), cell: (q) => String(q.bytes) },
      { label: t('f.error'), cell: (q) => [q.error, q.replayable ? null : h('div', { class: 'muted' }, t('dl.too_old'))] },
      { label: t('f.at'), cell: (q) => time(q.quarantined_at) },
      { label: t('dl.event'), cell: (q) => eventCell(q.event) },
    ], {
      name: 'replay', label: 'dl.replay', done: 'dl.replayed', disabled: (q) => !q.replayable,
      path: (q) => '/ops/v1/outbox-quarantine/' + seg(q.service) + '/' + seg(q.id) + '/replay',
    });
    const timers = section('parked', 'dl.timers', '/ops/v1/timers/parked', 'parked', [
      { label: t('f.service'), cell: (p) => p.service },
      { label: t('dl.kind'), cell: (p) => p.kind },
      { label: t('dl.key'), cell: (p) => p.key },
      { label: t('dl.due_at'), cell: (p) => time(p.due_at) },
      { label: t('dl.attempts'), cell: (p) => String(p.attempts) },
      { label: t('f.error'), cell: (p) => p.last_error },
      { label: t('f.at'), cell: (p) => time(p.parked_at) },
    ], {
      name: 'retry', label: 'dl.retry', done: 'dl.retried',
      path: (p) => '/ops/v1/timers/parked/' + seg(p.service) + '/' + seg(p.kind) + '/' + seg(p.key) + '/retry',
    });
    root.append(h('h1', {}, t('dl.title')), dead.box, quarantine.box, timers.box);
    await Promise.all([dead.load(), quarantine.load(), timers.load()]);
  },
};
