// The console's shell: sign-in, language, navigation and the page
// registry. A page is a module in pages/ (see pages/index.js); adding one
// is a file, a line in that list and its texts in i18n.js.
import { t, lang, setLang } from './i18n.js';
import { call, token, setToken, onUnauthorized, ApiError } from './api.js';
import { h, clear, field, showProblem } from './ui.js';
import { pages } from './pages/index.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let who = null; // {actor, roles} of the signed-in token
let generation = 0; // bumped at each render: pages stop polling when it moves on

function allowed(page) {
  return who && (who.roles.includes('admin') || page.roles.some((r) => who.roles.includes(r)));
}

function pageFor(pathname) {
  const name = pathname.replace(/^\/ops\/?/, '').replace(/\/$/, '');
  if (name === '') return { home: true };
  return pages.find((p) => p.id === name) || null;
}

export function go(url) {
  history.pushState(null, '', url);
  render();
}

function shell() {
  document.documentElement.lang = lang();
  document.title = t('title');
  document.getElementById('lang').textContent = t('lang.switch');
  const out = document.getElementById('signout');
  out.textContent = t('signout');
  out.hidden = !who;
  const w = document.getElementById('who');
  w.textContent = who ? t('who', { actor: who.actor, roles: who.roles.map((r) => t('role.' + r)).join(', ') }) : '';
  w.dataset.roles = who ? who.roles.join(' ') : '';
  clear(nav);
  if (!who) return;
  const current = pageFor(location.pathname);
  for (const p of pages) {
    if (!allowed(p)) continue;
    nav.append(h('a', { href: '/ops/' + p.id, data: { link: '', page: p.id }, class: current === p ? 'current' : null }, t(p.nav)));
  }
}

function signIn(message) {
  const input = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', size: 48 });
  const form = h('form', { id: 'signin', class: 'card' },
    h('h1', {}, t('signin.title')),
    message ? h('p', { class: 'refusal' }, message) : null,
    field('token', t('signin.token'), input, t('signin.help')),
    h('button', { type: 'submit' }, t('signin.submit')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    try {
      const me = await call('GET', '/ops/v1/whoami', { tok });
      setToken(tok);
      who = me;
      render();
    } catch (err) {
      showProblem(form, err);
    }
  });
  clear(view).append(form);
  input.focus();
}

async function render() {
  const gen = ++generation;
  shell();
  if (!who) {
    if (!token()) return signIn();
    try {
      who = await call('GET', '/ops/v1/whoami');
    } catch (err) {
      if (gen !== generation) return;
      if (err instanceof ApiError && err.status === 401) return; // onUnauthorized showed the sign-in
      clear(view);
      showProblem(view, err);
      return;
    }
    if (gen !== generation) return;
    shell();
  }
  const page = pageFor(location.pathname);
  clear(view);
  if (!page) {
    view.append(h('p', { id: 'notfound', class: 'refusal' }, t('notfound')));
    return;
  }
  if (page.home) {
    view.append(h('h1', {}, t('home.title')), h('p', {}, t('home.intro')),
      h('div', { class: 'pages card' }, pages.filter(allowed).map((p) =>
        h('div', {}, h('a', { href: '/ops/' + p.id, data: { link: '' } }, t(p.nav)), ' — ', h('span', { class: 'muted' }, t(p.desc))))));
    return;
  }
  if (!allowed(page)) {
    view.append(h('h1', {}, t(page.nav)),
      h('p', { id: 'refusal', class: 'refusal', role: 'alert' }, t('refused', {
        need: page.roles.map((r) => t('role.' + r)).join(' / '),
        have: who.roles.map((r) => t('role.' + r)).join(', '),
      })));
    return;
  }
  const root = h('section', { class: 'page', data: { page: page.id } });
  view.append(root);
  try {
    await page.render(root, { who, params: new URLSearchParams(location.search), go, alive: () => gen === generation });
  } catch (err) {
    if (gen === generation) showProblem(root, err);
  }
}

onUnauthorized(() => {
  setToken('');
  who = null;
  generation++;
  shell();
  signIn(t('signin.ended'));
});

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-link]');
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
document.getElementById('lang').addEventListener('click', () => {
  setLang(lang() === 'ja' ? 'en' : 'ja');
  render();
});
document.getElementById('signout').addEventListener('click', () => {
  setToken('');
  who = null;
  go('/ops/');
});

render();
