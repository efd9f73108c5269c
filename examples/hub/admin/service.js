// One service (`#/service/<name>`): the config editor with live checks, the diff of the edit, save with
// If-Match, the 412 / 422 / "changed by someone else" paths, the instances, history and restore.
import { call, detailOf, noRoute, svc } from './api.js';
import { ago, diffView, fill, h, issuesView, time } from './dom.js';
import { pretty, rebase } from './json.js';

const POLL_MS = 2000;
const CHECK_DELAY_MS = 300;

const docOf = (d) => ({ config: d.config, revision: d.revision, version: d.version, updated_at: d.updated_at });
const entryKey = (e) => `${e.revision}:${e.changed_at}`;
const entryLabel = (e) => `r${e.revision ?? '—'} · ${e.action} · ${e.changed_by ?? '?'} · ${time(e.changed_at)}`;

export function serviceView(main, name, { say }) {
  const controller = new AbortController();
  const { signal } = controller;
  const path = svc(name);
  /** What the hub last served, and the revision + config the edit is based on. */
  let doc = null;
  let etag = null;
  let base = null;
  let parsed = { ok: false, error: 'empty' };
  let history = [];
  let historyShown = '';
  let historyRevision = null;
  let checkTimer;
  let checkSeq = 0;
  let checkAbort;
  let pollTimer;

  const heading = h('h1', { tabindex: -1 }, name);
  const meta = h('p', { class: 'meta' }, 'Loading…');
  const conflict = h('section', { class: 'banner', hidden: true, 'aria-labelledby': 'conflict-h' });
  const editor = h('textarea', { id: 'editor', rows: 22, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'syntax check' });
  const syntax = h('p', { id: 'syntax', class: 'hint' });
  const check = h('div', { id: 'check', class: 'check', 'aria-live': 'polite' });
  const reason = h('input', { id: 'reason', type: 'text', maxlength: 1000, autocomplete: 'off' });
  const save = h('button', { type: 'button', class: 'primary', disabled: true, onclick: onSave }, 'Save');
  const discard = h('button', { type: 'button', disabled: true, onclick: () => adopt(doc, etag) }, 'Discard edit');
  const result = h('div', { class: 'result' });
  const editDiff = h('div');
  const instances = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const fromSel = h('select', { id: 'from', onchange: renderHistoryDiff });
  const toSel = h('select', { id: 'to', onchange: renderHistoryDiff });
  const historyDiff = h('div');
  const restoreSel = h('select', { id: 'restore-rev', onchange: updateButtons });
  const restoreBtn = h('button', { type: 'button', disabled: true, onclick: onRestore }, 'Restore');
  const restoreHint = h('p', { class: 'hint', id: 'restore-hint' });
  restoreBtn.setAttribute('aria-describedby', 'restore-hint');
  const restoreResult = h('div', { class: 'result' });
  const historyRows = h('tbody');
  editor.addEventListener('input', onInput);

  fill(
    main,
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Services'), ' / ', name),
    heading,
    meta,
    conflict,
    h(
      'div',
      { class: 'grid' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'edit-h' },
        h('h2', { id: 'edit-h' }, 'Edit'),
        h('label', { for: 'editor' }, 'Config (JSON)'),
        editor,
        syntax,
        check,
        h('label', { for: 'reason' }, 'Change reason (optional)'),
        reason,
        h('div', { class: 'actions' }, save, discard),
        result,
      ),
      h('section', { class: 'panel', 'aria-labelledby': 'diff-h' }, h('h2', { id: 'diff-h' }, 'Review changes'), editDiff),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'instances-h' }, h('h2', { id: 'instances-h' }, 'Instances'), instances),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'history-h' },
      h('h2', { id: 'history-h' }, 'History'),
      h('div', { class: 'row' }, h('label', { for: 'from' }, 'Compare revision'), fromSel, h('label', { for: 'to' }, 'with revision'), toSel),
      historyDiff,
      h('div', { class: 'row' }, h('label', { for: 'restore-rev' }, 'Restore revision'), restoreSel, restoreBtn),
      restoreHint,
      restoreResult,
      h(
        'table',
        {},
        h('caption', { class: 'sr-only' }, 'History of the service, newest first'),
        h('thead', {}, h('tr', {}, ['Revision', 'Action', 'By', 'When', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
        historyRows,
      ),
    ),
  );

  const dirty = () => base !== null && (parsed.ok ? pretty(parsed.value) !== pretty(base.config) : editor.value !== pretty(base.config));
  const failed = (error) => ({ status: 0, ok: false, data: { detail: `the hub did not answer (${error.message})` } });

  function renderMeta() {
    fill(meta, doc === null ? 'No config.' : `Revision ${doc.revision} · version ${doc.version} · updated ${time(doc.updated_at)}`);
  }

  /** Shows `next` as the current config and bases the edit on it. */
  function adopt(next, nextEtag) {
    doc = next;
    etag = nextEtag;
    base = { config: next.config, revision: next.revision };
    editor.value = pretty(next.config);
    conflict.hidden = true;
    fill(result);
    renderMeta();
    onInput();
  }

  function onInput() {
    try {
      const value = JSON.parse(editor.value);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('the config must be a JSON object');
      parsed = { ok: true, value };
    } catch (error) {
      parsed = { ok: false, error: error.message };
    }
    editor.setAttribute('aria-invalid', String(!parsed.ok));
    syntax.className = parsed.ok ? 'hint ok' : 'hint bad';
    fill(syntax, parsed.ok ? 'Valid JSON.' : `JSON error: ${parsed.error}`);
    fill(
      editDiff,
      parsed.ok
        ? diffView(pretty(base.config), pretty(parsed.value), `Your edit against revision ${base.revision}`)
        : h('p', { class: 'muted' }, 'Fix the JSON to see the diff.'),
    );
    updateButtons();
    scheduleCheck();
  }

  function updateButtons() {
    const edited = dirty();
    save.disabled = !parsed.ok || !edited;
    discard.disabled = !edited;
    restoreBtn.disabled = edited || restoreSel.value === '';
    fill(restoreHint, edited ? 'Save or discard your edit before restoring a revision.' : restoreSel.value === '' ? 'No earlier revision to restore.' : '');
  }

  // The consumers' schemas, through the hub's dry run, 300 ms after the last keystroke.
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkAbort?.abort();
    const seq = ++checkSeq;
    if (!parsed.ok) {
      check.className = 'check';
      fill(check, 'Consumer check: waiting for valid JSON.');
      return;
    }
    const candidate = parsed.value;
    checkTimer = setTimeout(async () => {
      checkAbort = new AbortController();
      const r = await call('POST', `${path}/validate`, { body: candidate, signal: AbortSignal.any([signal, checkAbort.signal]) }).catch(failed);
      if (seq === checkSeq && !signal.aborted) renderCheck(r);
    }, CHECK_DELAY_MS);
  }

  function renderCheck(r) {
    const notes = [];
    for (const u of r.data?.unchecked ?? []) notes.push(h('li', {}, `Not checkable by the hub (the consumer checks it itself): ${u.path || '(root)'} (${u.kind})`));
    for (const hash of r.data?.unknown_schemas ?? []) notes.push(h('li', {}, `Schema ${String(hash).slice(0, 12)}… is not known to the hub: not checked`));
    const extra = notes.length > 0 ? h('ul', { class: 'notes' }, notes) : null;
    if (r.ok && r.data?.valid === true) {
      const consumers = r.data.consumers ?? [];
      const count = consumers.reduce((n, c) => n + (c.instances ?? 0), 0);
      check.className = 'check ok';
      fill(
        check,
        consumers.length === 0
          ? 'Consumer check: no running consumer has reported a schema.'
          : `Consumer check: accepted by ${consumers.length} consumer schema(s) (${count} instance(s)).`,
        extra,
      );
    } else if (r.status === 422) {
      check.className = 'check bad';
      fill(check, h('p', {}, `Consumer check: ${detailOf(r)}`), issuesView(r.data), extra);
    } else if (noRoute(r)) {
      check.className = 'check';
      fill(check, 'Consumer check: this hub has no dry-run route.');
    } else if (r.status !== 401) {
      check.className = 'check';
      fill(check, `Consumer check unavailable: ${detailOf(r)}`);
    }
  }

  async function onSave() {
    if (!parsed.ok || !dirty()) return;
    const based = base;
    save.disabled = true;
    fill(result, h('p', { class: 'muted' }, 'Saving…'));
    const r = await call('POST', path, {
      body: parsed.value,
      ifMatch: based.revision,
      query: { change_reason: reason.value.trim() },
      signal,
    }).catch(failed);
    if (signal.aborted) return;
    if (r.ok) {
      adopt(docOf(r.data), r.etag);
      reason.value = '';
      say(`Saved: revision ${r.data.revision}.`);
      await loadHistory();
    } else if (r.status === 412) {
      fill(result);
      await showConflict(based, 'saved');
    } else if (r.status === 422) {
      fill(result, h('div', { class: 'error', role: 'alert' }, h('p', {}, h('strong', {}, 'Not saved. '), detailOf(r)), issuesView(r.data)));
      say('Not saved: the hub refused this config.', true);
    } else if (r.status !== 401) {
      fill(result, h('p', { class: 'error', role: 'alert' }, `Not saved: ${detailOf(r)}`));
    }
    updateButtons();
  }

  /** What changed between the revision the edit is based on and the current one; rebase or discard. */
  async function showConflict(based, why) {
    const cur = await call('GET', path, { signal }).catch(failed);
    if (signal.aborted) return;
    if (!cur.ok) {
      fill(result, h('p', { class: 'error', role: 'alert' }, `Not saved, and the current config could not be read: ${detailOf(cur)}`));
      return;
    }
    doc = docOf(cur.data);
    etag = cur.etag;
    renderMeta();
    await loadHistory();
    const by = history.find((e) => e.revision === doc.revision)?.changed_by;
    const who = by ? ` by ${by}` : '';
    const title =
      why === 'saved'
        ? `Not saved: revision ${doc.revision} was saved${who} meanwhile`
        : `Changed by someone else: revision ${doc.revision} was saved${who} while you were editing`;
    fill(
      conflict,
      h('h2', { id: 'conflict-h', tabindex: -1 }, title),
      h('p', {}, `Your edit is based on revision ${based.revision}. What changed since:`),
      diffView(pretty(based.config), pretty(doc.config), `Revision ${based.revision} → revision ${doc.revision}`),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: rebaseEdit }, `Rebase my edit onto revision ${doc.revision}`),
        h('button', { type: 'button', onclick: () => adopt(doc, etag) }, `Discard my edit, load revision ${doc.revision}`),
      ),
    );
    conflict.hidden = false;
    if (why === 'saved') conflict.querySelector('h2').focus();
    say(title, true);
  }

  function rebaseEdit() {
    if (!parsed.ok) {
      say('Fix the JSON before rebasing.', true);
      editor.focus();
      return;
    }
    const { value, conflicts } = rebase(base.config, parsed.value, doc.config);
    base = { config: doc.config, revision: doc.revision };
    editor.value = pretty(value);
    conflict.hidden = true;
    onInput();
    editor.focus();
    say(
      conflicts.length === 0
        ? `Rebased onto revision ${doc.revision}: review and save.`
        : `Rebased onto revision ${doc.revision}; changed on both sides, your value kept: ${conflicts.join(', ')}.`,
    );
  }

  async function onRestore() {
    const revision = Number(restoreSel.value);
    if (!Number.isSafeInteger(revision) || revision <= 0 || dirty()) return;
    restoreBtn.disabled = true;
    fill(restoreResult, h('p', { class: 'muted' }, `Restoring revision ${revision}…`));
    const r = await call('POST', `/rollback${path}`, { body: { revision }, ifMatch: doc.revision, signal }).catch(failed);
    if (signal.aborted) return;
    if (r.ok) {
      adopt(docOf(r.data), r.etag);
      fill(restoreResult);
      say(`Restored revision ${revision} as revision ${r.data.revision}.`);
      await loadHistory();
    } else if (r.status === 412) {
      fill(restoreResult, h('p', { class: 'error', role: 'alert' }, 'Not restored: the config changed meanwhile. Review the new revision and retry.'));
      await poll(false);
    } else if (r.status === 422) {
      fill(restoreResult, h('div', { class: 'error', role: 'alert' }, h('p', {}, h('strong', {}, 'Not restored. '), detailOf(r)), issuesView(r.data)));
    } else if (r.status !== 401) {
      fill(restoreResult, h('p', { class: 'error', role: 'alert' }, `Not restored: ${detailOf(r)}`));
    }
    updateButtons();
  }

  async function loadHistory() {
    const r = await call('GET', `/history${path}`, { query: { limit: 50 }, signal });
    if (!r.ok) return;
    history = r.data?.history ?? [];
    historyRevision = doc?.revision ?? null;
    const shown = JSON.stringify(history.map(entryKey));
    if (shown === historyShown) return;
    historyShown = shown;
    const keep = (sel, fallback) => {
      const old = sel.value;
      fill(sel, history.map((e) => h('option', { value: entryKey(e) }, entryLabel(e))));
      sel.value = history.some((e) => entryKey(e) === old) ? old : (fallback ?? '');
    };
    keep(fromSel, history[1] ? entryKey(history[1]) : history[0] && entryKey(history[0]));
    keep(toSel, history[0] && entryKey(history[0]));
    const restorable = [];
    for (const e of history) {
      if (e.revision === null || e.action === 'deleted' || e.revision === doc?.revision || restorable.some((x) => x.revision === e.revision)) continue;
      restorable.push(e);
    }
    const before = restoreSel.value;
    fill(restoreSel, restorable.map((e) => h('option', { value: e.revision }, `Revision ${e.revision} (${e.action}, ${time(e.changed_at)})`)));
    if (restorable.some((e) => String(e.revision) === before)) restoreSel.value = before;
    fill(
      historyRows,
      history.map((e) =>
        h(
          'tr',
          {},
          h('td', { class: 'num' }, e.revision ?? '—'),
          h('td', {}, e.action, e.override?.forced ? ' (forced)' : ''),
          h('td', {}, e.changed_by ?? '—'),
          h('td', {}, time(e.changed_at)),
          h('td', {}, e.change_reason ?? ''),
        ),
      ),
    );
    renderHistoryDiff();
    updateButtons();
  }

  function renderHistoryDiff() {
    const from = history.find((e) => entryKey(e) === fromSel.value);
    const to = history.find((e) => entryKey(e) === toSel.value);
    fill(
      historyDiff,
      from && to
        ? diffView(pretty(from.config), pretty(to.config), `Revision ${from.revision ?? '—'} → revision ${to.revision ?? '—'}`)
        : h('p', { class: 'muted' }, 'No history yet.'),
    );
  }

  async function loadInstances() {
    const r = await call('GET', `${path}/instances`, { signal });
    if (noRoute(r)) {
      fill(instances, h('p', { class: 'muted' }, 'This hub has no fleet view.'));
      return;
    }
    if (!r.ok) {
      if (r.status !== 401) fill(instances, h('p', { class: 'error' }, `Instances unavailable: ${detailOf(r)}`));
      return;
    }
    const list = r.data?.instances ?? [];
    const s = r.data?.summary;
    const current = r.data?.revision;
    const now = Date.now();
    fill(
      instances,
      h(
        'p',
        {},
        s ? `${s.total} instance(s): ${s.on_latest} on latest, ${s.behind} behind, ${s.rejected} rejected.` : `${list.length} instance(s).`,
      ),
      list.length === 0
        ? null
        : h(
            'table',
            { class: 'instances' },
            h('caption', { class: 'sr-only' }, 'Instances running this service'),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Instance', 'Host', 'PID', 'Client version', 'Revision', 'Source', 'Stale', 'Last seen', 'Last error'].map((t) =>
                  h('th', { scope: 'col' }, t),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              list.map((i) => {
                const rejected = i.last_error === 'CONFIG_INVALID';
                const behind = !rejected && i.revision !== current;
                return h(
                  'tr',
                  { class: rejected ? 'rejected' : behind ? 'behind' : null },
                  h('th', { scope: 'row' }, i.instance_id),
                  h('td', {}, i.host),
                  h('td', { class: 'num' }, i.pid),
                  h('td', {}, i.client_version),
                  h('td', { class: 'num' }, i.revision ?? '—', behind ? ' (behind)' : ''),
                  h('td', {}, i.source ?? '—'),
                  h('td', {}, i.stale ? 'yes' : 'no'),
                  h('td', {}, ago(i.last_seen, now)),
                  h('td', {}, i.last_error ?? '—', rejected ? ' (rejected the config)' : ''),
                );
              }),
            ),
          ),
    );
  }

  /** Every 2 s: the config (conditional), the instances, and the history when the revision moved. */
  async function poll(again = true) {
    try {
      const r = await call('GET', path, { ifNoneMatch: etag, signal });
      if (r.status === 200 && r.etag !== etag) {
        const next = docOf(r.data);
        if (!dirty()) {
          const moved = doc !== null && next.revision !== doc.revision;
          adopt(next, r.etag);
          if (moved) say(`Revision ${next.revision} was saved elsewhere; the editor shows it.`);
        } else {
          doc = next;
          etag = r.etag;
          renderMeta();
          if (next.revision !== base.revision) await showConflict(base, 'changed');
        }
      } else if (r.status === 404) {
        fill(meta, 'This service has no config any more (deleted).');
      }
      await loadInstances();
      if (doc !== null && doc.revision !== historyRevision) await loadHistory();
    } catch (error) {
      if (signal.aborted) return;
      say(`The hub did not answer (${error.message}); retrying.`, true);
    }
    if (again && !signal.aborted) {
      clearTimeout(pollTimer);
      pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  (async () => {
    const r = await call('GET', path, { signal }).catch(failed);
    if (signal.aborted) return;
    if (!r.ok) {
      fill(meta, r.status === 404 ? `No config for service '${name}'.` : `Could not load: ${detailOf(r)}`);
      return;
    }
    adopt(docOf(r.data), r.etag);
    await Promise.all([loadHistory(), loadInstances()]).catch(() => {});
    if (!signal.aborted) pollTimer = setTimeout(poll, POLL_MS);
  })();

  return {
    heading,
    destroy() {
      controller.abort();
      clearTimeout(pollTimer);
      clearTimeout(checkTimer);
    },
  };
}
