// Mass revocation (OP-5): by serial list, organization or public key,
// with a reason; then the job's progress (POST /ops/v1/mass-revocations,
// GET /ops/v1/mass-revocations/{id}). The answer's fields are shown as
// they come; a total and a count of revoked certificates, when given,
// make a progress bar.
import { t } from '../i18n.js';
import { get, post, seg, ApiError } from '../api.js';
import { h, clear, field, showProblem, clearErrors, notice } from '../ui.js';
import { reasonSelect, result } from './revocation.js';

const terminal = ['done', 'completed', 'complete', 'finished', 'failed', 'succeeded'];

function finished(job) {
  return terminal.includes(String(job.status || '').toLowerCase()) || !!job.finished_at || !!job.completed_at;
}

function progressBar(job) {
  const total = job.total ?? job.matched ?? job.certificates;
  const done = job.revoked ?? job.done ?? job.processed;
  if (typeof total !== 'number' || typeof done !== 'number' || total <= 0) return null;
  return h('div', {}, h('progress', { max: total, value: done }), ' ', done + ' / ' + total);
}

function show(box, job) {
  clear(box).append(h('div', { class: 'card', id: 'mass-job', data: { job: String(job.id ?? ''), status: String(job.status ?? ''), finished: String(finished(job)) } },
    h('h2', {}, t('mass.progress')), progressBar(job), result(job)));
}

async function follow(box, id, ctx) {
  // The job runs on the server; the page asks again every 2 s until it
  // has finished or the reader went to another page.
  while (ctx.alive()) {
    let job;
    try {
      job = await get('/ops/v1/mass-revocations/' + seg(id));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) clear(box).append(h('p', { class: 'refusal', id: 'mass-unavailable' }, t('mass.unavailable')));
      else showProblem(box, err);
      return;
    }
    if (!ctx.alive()) return;
    show(box, job);
    if (finished(job)) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

export default {
  id: 'mass-revocation',
  nav: 'nav.mass',
  desc: 'desc.mass',
  roles: ['admin'],
  async render(root, ctx) {
    const box = h('div', { id: 'mass-result' });
    const reason = reasonSelect();
    const by = h('select', {});
    for (const k of ['serials', 'organization', 'public_key_sha256']) by.append(h('option', { value: k }, t('mass.' + k)));
    const serials = h('textarea', { rows: 6, cols: 44, spellcheck: 'false' });
    const organization = h('input', { type: 'text', size: 20 });
    const key = h('input', { type: 'text', size: 70, spellcheck: 'false' });
    const fields = {
      serials: field('serials', t('mass.serials'), serials),
      organization: field('organization', t('mass.organization'), organization),
      public_key_sha256: field('public_key_sha256', t('mass.public_key_sha256'), key),
    };
    const pick = () => { for (const [k, f] of Object.entries(fields)) f.hidden = k !== by.value; };
    by.addEventListener('change', pick);
    pick();
    const form = h('form', { class: 'card', id: 'mass-revoke' },
      h('p', { class: 'muted' }, t('mass.help')),
      field('reason', t('f.reason'), reason),
      field('by', t('mass.by'), by),
      Object.values(fields),
      h('button', { type: 'submit', class: 'danger' }, t('mass.submit')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      clear(box);
      const body = { reason: reason.value };
      if (by.value === 'serials') body.serials = serials.value.split(/[\s,]+/).filter(Boolean);
      if (by.value === 'organization') body.organization = organization.value.trim();
      if (by.value === 'public_key_sha256') body.public_key_sha256 = key.value.trim();
      let job;
      try {
        job = await post('/ops/v1/mass-revocations', body);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) box.append(h('p', { class: 'refusal', id: 'mass-unavailable' }, t('mass.unavailable')));
        else showProblem(form, err);
        return;
      }
      if (job && job.id !== undefined) {
        ctx.go('/ops/mass-revocation?id=' + encodeURIComponent(job.id));
        return;
      }
      box.append(notice(JSON.stringify(job)));
    });
    const lookup = h('input', { type: 'text', size: 38, value: ctx.params.get('id') || '' });
    const lookupForm = h('form', { class: 'inline card', id: 'mass-lookup' }, field('id', t('mass.id'), lookup),
      h('div', { class: 'field' }, h('button', { type: 'submit', class: 'secondary' }, t('mass.lookup'))));
    lookupForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (lookup.value.trim()) ctx.go('/ops/mass-revocation?id=' + encodeURIComponent(lookup.value.trim()));
    });
    root.append(h('h1', {}, t('mass.title')), box, form, lookupForm);
    const id = ctx.params.get('id');
    if (id) follow(box, id, ctx);
  },
};
