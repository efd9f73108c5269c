// The services list (`#/`): name, revision, version, updated, and the fleet counts when the hub has them.
import { call, detailOf } from './api.js';
import { fill, h, time } from './dom.js';

const POLL_MS = 2000;

export function listView(main, { say }) {
  const heading = h('h1', { tabindex: -1 }, 'Services');
  const note = h('p', { class: 'muted' }, 'Loading…');
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'services' },
    h('caption', { class: 'sr-only' }, 'Services, their current revision and their instances'),
    h(
      'thead',
      {},
      h('tr', {}, ['Service', 'Revision', 'Version', 'Updated', 'On latest', 'Behind', 'Rejected'].map((t) => h('th', { scope: 'col' }, t))),
    ),
    tbody,
  );
  fill(main, heading, note, table);

  let shown = '';
  let timer;
  const controller = new AbortController();

  function render(services) {
    // Re-rendering would drop the keyboard focus: keep it on the same link.
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
    fill(
      tbody,
      services.map((s) => {
        const n = s.instances;
        const count = (v) => (n && typeof v === 'number' ? String(v) : '—');
        return h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: `#/service/${encodeURIComponent(s.service_name)}` }, s.service_name)),
          h('td', { class: 'num' }, s.revision ?? '—'),
          h('td', {}, s.version ?? '—'),
          h('td', {}, time(s.updated_at)),
          h('td', { class: 'num' }, count(n?.on_latest)),
          h('td', { class: n?.behind > 0 ? 'num warn' : 'num' }, count(n?.behind)),
          h('td', { class: n?.rejected > 0 ? 'num bad' : 'num' }, count(n?.rejected)),
        );
      }),
    );
    if (focused !== null) tbody.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
  }

  async function load() {
    try {
      const r = await call('GET', '', { signal: controller.signal });
      if (r.ok) {
        const services = r.data?.services ?? [];
        const next = JSON.stringify(services);
        if (next !== shown) {
          shown = next;
          render(services);
        }
        fill(note, services.length === 0 ? 'No services this key may read.' : `${services.length} service(s); refreshed every 2 s.`);
      } else if (r.status !== 401) fill(note, `Could not load the services: ${detailOf(r)}`);
    } catch (error) {
      if (controller.signal.aborted) return;
      fill(note, `The hub did not answer (${error.message}); retrying.`);
      say('The hub did not answer; retrying.', true);
    }
    if (!controller.signal.aborted) timer = setTimeout(load, POLL_MS);
  }
  load();

  return {
    heading,
    destroy() {
      controller.abort();
      clearTimeout(timer);
    },
  };
}
