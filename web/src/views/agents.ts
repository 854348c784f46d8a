// #/agents: the GPU agents: GPUs, status, VRAM and utilisation from their last heartbeat, the run
// they hold and the runs they trained; drain and undrain (ADMIN, or the agent's own key). Refreshed every 5 s.
import { gql, graphql, viewerRole } from '../api.js';
import { dash, errorBox, fmtAgo, h, replace, statusBadge } from '../dom.js';
import type { View } from '../main.js';

const AGENTS = graphql(`
  query Agents {
    viewer { role agent { id } }
    agents {
      id name hostname gpus { index name memoryMb } labels hourlyCostUsd status lastSeenAt version
      currentRun { id name status progress { step totalSteps vramUsedMb gpuUtilization } }
    }
  }
`);
const TRAINED = graphql(`
  query AgentRuns($id: ID!) { runs(filter: { agentId: $id }, first: 5) { totalCount edges { node { id name status } } } }
`);
const DRAIN = graphql(`mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id status } }`);

export const agentsView: View = (main) => {
  let stopped = false;
  const body = h('div', { 'aria-live': 'polite' });
  const errors = h('div');
  replace(main, h('div', { class: 'view-head' }, h('h1', null, 'Agents')), errors, body);

  async function drain(id: string, draining: boolean) {
    try {
      await gql(DRAIN, { id, d: draining });
      await load();
    } catch (err) {
      replace(errors, errorBox(err));
    }
  }

  async function load() {
    try {
      const { agents, viewer } = await gql(AGENTS);
      const trained = await Promise.all(agents.map((a) => gql(TRAINED, { id: a.id }).then((d) => d.runs)));
      if (stopped) return;
      errors.replaceChildren();
      if (!agents.length) return replace(body, h('p', { class: 'muted' }, 'No agent has registered yet. Start one with npm run agent.'));
      const mayDrain = (id: string) => (viewerRole() ?? viewer.role) === 'ADMIN' || viewer.agent?.id === id;
      const gib = (mb: number) => `${(mb / 1024).toFixed(0)} GiB`;
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
              h('tr', null, ['Agent', 'Status', 'GPUs', 'VRAM / GPU use', 'Last seen', 'Current run', 'Trained', 'Cost / h', ''].map((t) => h('th', { scope: 'col', class: t === 'Cost / h' ? 'num' : null }, t))),
            ),
            h(
              'tbody',
              null,
              agents.map((a, i) => {
                const p = a.currentRun?.progress;
                const total = a.gpus.reduce((s, g) => s + g.memoryMb, 0);
                const runs = trained[i]!;
                return h(
                  'tr',
                  { 'data-agent-id': a.id },
                  h('th', { scope: 'row' }, a.name, h('div', { class: 'muted small' }, [a.hostname, a.version && `v ${a.version}`, a.labels.join(', ')].filter(Boolean).join(' · '))),
                  h('td', null, statusBadge(a.status)),
                  h('td', null, h('ul', { class: 'plain' }, a.gpus.map((g) => h('li', null, `${g.index}: ${g.name}, ${gib(g.memoryMb)}`)))),
                  h(
                    'td',
                    { class: 'vram' },
                    p?.vramUsedMb != null
                      ? [h('meter', { min: 0, max: total, value: p.vramUsedMb, 'aria-label': 'VRAM used' }), ` ${(p.vramUsedMb / 1024).toFixed(1)} of ${gib(total)}`]
                      : dash,
                    p?.gpuUtilization != null ? h('div', { class: 'small' }, `GPU ${Math.round(p.gpuUtilization)}%`) : '',
                  ),
                  h('td', null, a.lastSeenAt ? h('time', { datetime: a.lastSeenAt, title: new Date(a.lastSeenAt).toLocaleString() }, fmtAgo(a.lastSeenAt)) : dash),
                  h('td', null, a.currentRun ? [h('a', { href: `#/runs/${a.currentRun.id}` }, a.currentRun.name), ' ', statusBadge(a.currentRun.status)] : dash),
                  h(
                    'td',
                    { class: 'trained' },
                    runs.totalCount
                      ? [
                          h('ul', { class: 'plain small' }, runs.edges.map(({ node }) => h('li', null, h('a', { href: `#/runs/${node.id}` }, node.name), ' ', statusBadge(node.status)))),
                          runs.totalCount > runs.edges.length ? h('div', { class: 'muted small' }, `and ${runs.totalCount - runs.edges.length} more`) : '',
                        ]
                      : dash,
                  ),
                  h('td', { class: 'num' }, a.hourlyCostUsd != null ? `$${a.hourlyCostUsd.toFixed(2)}` : dash),
                  h(
                    'td',
                    null,
                    mayDrain(a.id)
                      ? a.status === 'DRAINING'
                        ? h('button', { type: 'button', class: 'small secondary', onclick: () => void drain(a.id, false) }, 'Undrain')
                        : h('button', { type: 'button', class: 'small secondary', title: 'Finish the current run, then take no new one', onclick: () => void drain(a.id, true) }, 'Drain')
                      : '',
                  ),
                );
              }),
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
