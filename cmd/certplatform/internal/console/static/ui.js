// Small DOM helpers. Text always goes in as text (textContent), never as
// HTML: values from the API cannot inject markup.
import { t, has, locale } from './i18n.js';

// h builds an element: h('button', {class: 'x', on: {click: f}, data: {id: 1}}, 'text', child…).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// time shows an RFC 3339 instant in the reader's time zone; the exact
// value is in the title.
export function time(iso) {
  if (!iso) return t('dash');
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'medium' }));
}

// label is the text for an API value under a key prefix ('status.'),
// or the value itself.
export function label(prefix, v) {
  if (v === undefined || v === null || v === '') return t('dash');
  return has(prefix + v) ? t(prefix + v) : String(v);
}

export function val(v) { return v === undefined || v === null || v === '' ? t('dash') : v; }

// kv is a definition list of [label, value] pairs (pairs with value
// undefined are left out).
export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(h('dt', {}, k), h('dd', {}, v === null || v === '' ? t('dash') : v));
  }
  return dl;
}

// table: columns [{label, cell(row)}], rows; empty → the "none" text.
export function table(columns, rows, rowProps) {
  if (!rows || rows.length === 0) return h('p', { class: 'muted' }, t('none'));
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', rowProps ? rowProps(r) : {}, columns.map((c) => h('td', {}, c.cell(r)))))));
}

export function field(name, labelText, input, help) {
  input.name = name;
  input.id = input.id || 'f-' + name + '-' + Math.random().toString(36).slice(2, 8);
  return h('div', { class: 'field', data: { field: name } },
    h('label', { for: input.id }, labelText), input,
    help ? h('small', { class: 'muted' }, help) : null);
}

export function select(options, value) {
  const s = h('select', {});
  for (const [v, text] of options) s.append(h('option', { value: v, selected: v === value }, text));
  return s;
}

export function json(v) { return h('pre', {}, JSON.stringify(v, null, 2)); }

export function notice(text) { return h('div', { class: 'notice', role: 'status' }, text); }

// clearErrors removes what showProblem added inside root.
export function clearErrors(root) {
  for (const el of root.querySelectorAll('.problem, .field-error')) el.remove();
  for (const el of root.querySelectorAll('.invalid')) el.classList.remove('invalid');
}

// showProblem puts an API error into root: each field error next to the
// form field of that name when there is one, the rest (and the title and
// detail) in a box at the top of root.
export function showProblem(root, err) {
  clearErrors(root);
  const p = err.problem || { title: String(err) };
  const rest = [];
  for (const fe of p.errors || []) {
    const input = root.querySelector('[name="' + CSS.escape(fe.field) + '"]');
    if (input) {
      input.classList.add('invalid');
      input.closest('.field')?.append(h('span', { class: 'field-error', data: { field: fe.field }, role: 'alert' }, fe.message));
      if (!input.closest('.field')) input.after(h('span', { class: 'field-error', data: { field: fe.field }, role: 'alert' }, fe.message));
    } else {
      rest.push(fe);
    }
  }
  const box = h('div', { class: 'problem', role: 'alert', data: { status: String(err.status ?? '') } },
    h('strong', {}, p.title || t('error.status', { status: err.status })),
    err.status ? h('span', { class: 'muted' }, ' (' + err.status + ')') : null,
    p.detail ? h('div', {}, p.detail) : null,
    p.retryAfter ? h('div', {}, t('error.retry', { s: p.retryAfter })) : null,
    rest.length ? h('div', {}, t('error.fields'), h('ul', {}, rest.map((fe) => h('li', {}, fe.field + ': ' + fe.message)))) : null);
  root.prepend(box);
  return box;
}

// busy disables a button while fn runs.
export async function busy(button, fn) {
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}
