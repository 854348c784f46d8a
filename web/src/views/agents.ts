// #/agents: the GPU agents, their GPUs, status, last heartbeat and current run (refreshed every 5 s).
import { gql, graphql } from '../api.js';
import { dash, errorBox, fmtAgo, h, replace, statusBadge } from '../dom.js';
import type { View } from '../main.js';

const AGENTS = graphql(`
  query Agents { agents { id name hostname gpus { index name memoryMb } labels hourlyCostUsd status lastSeenAt version currentRun { id name status } } }
`);

export const agentsView: View = (main) => {
  let stopped = false;
  const body = h('div', { 'aria-live': 'polite' });
  const errors = h('div');
  replace(main, h('div', { class: 'view-head' }, h('h1', null, 'Agents')), errors, body);

  async function load() {
    try {
      const { agents } = await gql(AGENTS);
      if (stopped) return;
      errors.replaceChildren();
      if (!agents.length) return replace(body, h('p', { class: 'muted' }, 'No agent has registered yet. Start one with npm run agent.'));
      replace(
        body,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'agents-table' },
            h(
              'thead',
              null,
              h('tr', null, ['Agent', 'Status', 'GPUs', 'Last seen', 'Current run', 'Labels', 'Cost / h', 'Version'].map((t) => h('th', { scope: 'col', class: t === 'Cost / h' ? 'num' : null }, t))),
            ),
            h(
              'tbody',
              null,
              agents.map((a) =>
                h(
                  'tr',
                  { 'data-agent-id': a.id },
                  h('th', { scope: 'row' }, a.name, a.hostname ? h('div', { class: 'muted small' }, a.hostname) : ''),
                  h('td', null, statusBadge(a.status)),
                  h('td', null, h('ul', { class: 'plain' }, a.gpus.map((g) => h('li', null, `${g.index}: ${g.name}, ${(g.memoryMb / 1024).toFixed(0)} GiB`)))),
                  h('td', null, a.lastSeenAt ? h('time', { datetime: a.lastSeenAt, title: new Date(a.lastSeenAt).toLocaleString() }, fmtAgo(a.lastSeenAt)) : dash),
                  h('td', null, a.currentRun ? [h('a', { href: `#/runs/${a.currentRun.id}` }, a.currentRun.name), ' ', statusBadge(a.currentRun.status)] : dash),
                  h('td', null, a.labels.join(', ') || dash),
                  h('td', { class: 'num' }, a.hourlyCostUsd != null ? `$${a.hourlyCostUsd.toFixed(2)}` : dash),
                  h('td', null, a.version ?? dash),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  void load();
  const timer = setInterval(() => void load(), 5000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
};
