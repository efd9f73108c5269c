// DOM helpers: elements are built with textContent and attributes only (never innerHTML), so nothing
// from the hub is ever parsed as markup.
import { diffLines, diffStats, hunks } from './diff.js';

function append(el, children) {
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** `h('button', { type: 'button', onclick }, 'Save')`; `class`, `text`, `on<event>`, `true` → empty attribute. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const time = (ms) => (typeof ms === 'number' ? new Date(ms).toLocaleString() : '—');

export function ago(ms, now = Date.now()) {
  if (typeof ms !== 'number') return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : time(ms);
}

/** A line diff of two texts, as a captioned figure (signs are text, not only colour). */
export function diffView(oldText, newText, caption) {
  const ops = diffLines(oldText, newText);
  const { added, removed } = diffStats(ops);
  const figure = h('figure', { class: 'diff' }, h('figcaption', {}, caption, ' ', h('span', { class: 'stats' }, `+${added} −${removed}`)));
  if (added === 0 && removed === 0) {
    figure.append(h('p', { class: 'muted' }, 'No differences.'));
    return figure;
  }
  const pre = h('pre', { tabindex: 0, 'aria-label': `${caption}: ${added} lines added, ${removed} removed` });
  for (const hunk of hunks(ops)) {
    pre.append(h('span', { class: 'hunk' }, hunk.header));
    for (const line of hunk.lines) {
      const cls = line.op === '+' ? 'add' : line.op === '-' ? 'del' : 'ctx';
      // One block per line (the stylesheet), so no newline text between them.
      pre.append(h('span', { class: cls }, `${line.op} ${line.text}`));
    }
  }
  figure.append(pre);
  return figure;
}

/** Issues of a 422 or a dry run, each with its path and the consumers (schema, instances) that reject it. */
export function issuesView(data) {
  const list = h('ul', { class: 'issues' });
  const consumers = Array.isArray(data?.consumers) ? data.consumers : [];
  const issueItem = (issue, consumer) =>
    h(
      'li',
      {},
      h('code', {}, issue.path || '(root)'),
      ': ',
      issue.message ?? issue.keyword ?? 'invalid',
      consumer === undefined
        ? null
        : h(
            'span',
            { class: 'consumer' },
            ` — consumer schema ${String(consumer.schema_hash ?? '?').slice(0, 12)}…, ${consumer.instances ?? '?'} instance(s)`,
            Array.isArray(consumer.instance_ids) && consumer.instance_ids.length > 0 ? `: ${consumer.instance_ids.join(', ')}` : '',
          ),
    );
  for (const consumer of consumers) for (const issue of consumer.issues ?? []) list.append(issueItem(issue, consumer));
  if (list.children.length === 0) for (const issue of data?.issues ?? []) list.append(issueItem(issue));
  if (list.children.length === 0) for (const path of data?.paths ?? []) list.append(h('li', {}, h('code', {}, path), ': secret-looking key'));
  return list;
}
