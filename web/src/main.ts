// The page: sign-in, a header, and hash routes (#/runs, #/runs/:id, #/compare, #/agents).
import { ApiError, clearKey, expectRole, getKey, gql, graphql, onUnauthenticated, REJECTED, setKey, setViewerRole, viewerRole, type Role } from './api.js';
import { h, replace } from './dom.js';
import { closeLive } from './live.js';
import { agentsView } from './views/agents.js';
import { compareView } from './views/compare.js';
import { createView } from './views/create.js';
import { datasetsView, datasetView } from './views/datasets.js';
import { runView } from './views/run.js';
import { runsView } from './views/runs.js';

const VIEWER = graphql(`query Viewer { viewer { role name } }`);

/** A view renders into `main` and returns what stops it (subscriptions, timers, charts). */
export type View = (main: HTMLElement, params: URLSearchParams, id?: string) => (() => void) | void;

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
let stop: (() => void) | void;

interface Route {
  view: View;
  id?: string;
  name: string;
}

function route(): Route {
  const [path = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'runs' && parts[1]) return { view: runView, id: decodeURIComponent(parts[1]), name: 'runs' };
  if (parts[0] === 'compare') return { view: compareView, name: 'compare' };
  if (parts[0] === 'datasets' && parts[1]) return { view: datasetView, id: decodeURIComponent(parts[1]), name: 'datasets' };
  if (parts[0] === 'datasets') return { view: datasetsView, name: 'datasets' };
  if (parts[0] === 'agents') return { view: agentsView, name: 'agents' };
  if (parts[0] === 'new') return { view: createView, name: 'new' };
  return { view: runsView, name: 'runs' };
}

function renderNav(current: string) {
  const link = (name: string, label: string) =>
    h('a', { href: `#/${name}`, 'aria-current': current === name ? 'page' : null }, label);
  replace(
    nav,
    h('a', { class: 'brand', href: '#/runs' }, 'loralab'),
    h('div', { class: 'links' }, link('runs', 'Runs'), link('compare', 'Compare'), link('datasets', 'Datasets'), link('agents', 'Agents'), link('new', 'New')),
    h('span', { class: 'who', id: 'role' }, viewerRole() ?? ''),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOutNow('') }, 'Sign out'),
  );
}

let signedIn = false;

function show() {
  stop?.();
  stop = undefined;
  if (!getKey() || !signedIn) return;
  const r = route();
  renderNav(r.name);
  main.replaceChildren();
  const [, query = ''] = location.hash.split('?');
  stop = r.view(main, new URLSearchParams(query), r.id);
}

function signOutNow(message: string) {
  signedIn = false;
  stop?.();
  stop = undefined;
  clearKey();
  setViewerRole(null);
  closeLive();
  signInForm(message);
}

function signInForm(message: string) {
  nav.replaceChildren(h('span', { class: 'brand' }, 'loralab'));
  const input = h('input', { id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const status = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message);
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'signin',
      'aria-labelledby': 'signin-title',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        button.disabled = true;
        status.textContent = '';
        try {
          const { viewer } = await gql(VIEWER, {}, key);
          setKey(key);
          setViewerRole(viewer.role as Role);
          signedIn = true;
          if (!location.hash || location.hash === '#/') location.hash = '#/runs';
          show();
        } catch (err) {
          status.textContent = err instanceof ApiError && err.code === 'UNAUTHENTICATED' ? REJECTED : err instanceof Error ? err.message : String(err);
          input.focus();
          input.select();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', null, 'Paste an API key. It stays in this browser.'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    status,
    button,
  );
  replace(main, form);
  input.focus();
}

async function boot() {
  onUnauthenticated((message) => signOutNow(message));
  window.addEventListener('hashchange', () => {
    show();
    main.focus({ preventScroll: true }); // a screen reader starts reading the new view
  });
  const key = getKey();
  if (!key) return signInForm('');
  // The view loads its data while the key is checked: one round trip less before the first chart.
  // A refused key signs the page out (gql does that on UNAUTHENTICATED), whichever answer comes first.
  const viewer = gql(VIEWER).then((d) => d.viewer.role as Role);
  void expectRole(viewer).then((role) => {
    const who = document.getElementById('role');
    if (who) who.textContent = role ?? '';
  });
  viewer.catch(() => {}); // a refused key is handled by gql; other failures show in the view
  signedIn = true;
  show();
}

void boot();
