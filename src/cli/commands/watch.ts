/**
 * `watch`: prints each change of one service as it happens, until SIGINT/SIGTERM (exit 0). Without
 * `--nats` it polls with conditional GETs (a 304 costs nothing); with `--nats` it refetches on every
 * notice on `config.update.<service>` and after every reconnect (core NATS is at-most-once), and polls
 * too only when `--interval-ms` is given. The hub stays authoritative: a notice is only a trigger.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigDocument } from '../../hub/wire.js';
import { intFlag, stringFlag } from '../args.js';
import type { CommandContext } from '../context.js';
import { HubRefusedError } from '../errors.js';
import { cell, formatTime, printable, renderDiff } from '../format.js';
import { pollConfig } from '../hub-api.js';
import { changedPaths, unifiedJsonDiff } from '../json-diff.js';
import { openNotices } from './watch-nats.js';

export const DEFAULT_WATCH_INTERVAL_MS = 2_000;

interface Seen {
  doc: ConfigDocument;
  etag: string | undefined;
}

/** Aborts on SIGINT/SIGTERM or the caller's signal; `dispose()` removes the process listeners. */
function stopSignal(external: AbortSignal | undefined): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  external?.addEventListener('abort', stop, { once: true });
  if (external?.aborted === true) stop();
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      external?.removeEventListener('abort', stop);
    },
  };
}

export async function runWatch(ctx: CommandContext): Promise<void> {
  const explicitInterval = intFlag(ctx.flags, 'interval-ms', { min: 100, max: 86_400_000, command: 'watch' });
  const natsUrl = stringFlag(ctx.flags, 'nats');
  const intervalMs = explicitInterval ?? (natsUrl === undefined ? DEFAULT_WATCH_INTERVAL_MS : undefined);
  const stop = stopSignal(ctx.io.signal);
  const { signal } = stop;
  let seen: Seen | null | undefined;
  let failing: string | undefined;

  const check = async (): Promise<void> => {
    const answer = await pollConfig(ctx.hub, ctx.service, seen?.etag, signal);
    if (answer === 'unchanged') return;
    const previous = seen;
    seen = answer === null ? null : { doc: answer.doc, etag: answer.etag };
    if (previous === undefined) return announce(ctx, seen, natsUrl, intervalMs);
    if (answer === null) {
      if (previous !== null) emitDeleted(ctx, previous.doc);
      return;
    }
    const same = previous !== null && previous.doc.revision === answer.doc.revision && previous.doc.updated_at === answer.doc.updated_at;
    if (!same) emitChange(ctx, previous?.doc ?? null, answer.doc);
  };

  // The watch ends on the stop signal, or on a refusal (401/403/…) of a background check.
  let fatal: unknown;
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => {
    finish = resolve;
  });
  signal.addEventListener('abort', () => finish(), { once: true });

  /** A background check: an outage is reported once and waited out. */
  const guarded = async (): Promise<void> => {
    try {
      await check();
      if (failing !== undefined) ctx.err(`# ${ctx.hub.origin} answers again`);
      failing = undefined;
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof HubRefusedError) {
        fatal = error;
        finish();
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      if (message !== failing) ctx.err(`# ${message}; still watching`);
      failing = message;
    }
  };
  // One check at a time; triggers meanwhile (a burst of notices, a poll tick) coalesce into one more.
  let running: Promise<void> | undefined;
  let again = false;
  const trigger = (): Promise<void> => {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await guarded();
      } while (again && !signal.aborted && fatal === undefined);
      running = undefined;
    })();
    return running;
  };

  try {
    try {
      await check();
    } catch (error) {
      if (signal.aborted) return; // stopped before the first answer
      throw error;
    }
    const notices = natsUrl === undefined ? undefined : await openNotices(ctx, natsUrl, trigger, signal);
    try {
      if (intervalMs !== undefined) void pollLoop(intervalMs, trigger, signal, () => fatal !== undefined);
      await ended;
      await running;
    } finally {
      await notices?.close();
    }
    if (fatal !== undefined) throw fatal;
  } finally {
    stop.dispose();
  }
}

async function pollLoop(intervalMs: number, tick: () => Promise<void>, signal: AbortSignal, ended: () => boolean): Promise<void> {
  while (!signal.aborted && !ended()) {
    try {
      await sleep(intervalMs, undefined, { signal });
    } catch {
      return;
    }
    await tick();
  }
}

function announce(ctx: CommandContext, seen: Seen | null, natsUrl: string | undefined, intervalMs: number | undefined): void {
  if (ctx.globals.json) {
    ctx.json(seen === null ? { event: 'absent', service_name: ctx.service } : { event: 'current', ...seen.doc });
    return;
  }
  const how = [natsUrl === undefined ? undefined : `NATS notices from ${natsUrl}`, intervalMs === undefined ? undefined : `polling every ${intervalMs} ms`]
    .filter((s) => s !== undefined)
    .join(' and ');
  const at = seen === null ? 'no config yet' : `revision ${cell(seen.doc.revision)} (version ${cell(seen.doc.version)}, updated ${formatTime(seen.doc.updated_at)})`;
  ctx.err(printable(`# watching ${ctx.service} at ${at}, by ${how}; Ctrl-C ends`));
}

function emitChange(ctx: CommandContext, previous: ConfigDocument | null, doc: ConfigDocument): void {
  const changes = changedPaths(previous?.config ?? {}, doc.config);
  if (ctx.globals.json) {
    ctx.json({ event: 'change', ...doc, previous_revision: previous?.revision ?? null, changes });
    return;
  }
  const from = previous === null ? 'created' : `revision ${cell(previous.revision)} →`;
  const paths = changes.length === 0 ? '(no config change)' : changes.map((c) => c.path || '(root)').join(', ');
  ctx.out(printable(`${formatTime(doc.updated_at)} ${doc.service_name} ${from} ${cell(doc.revision)} (version ${cell(doc.version)}): ${paths}`));
  const label = (d: ConfigDocument | null): string => (d === null ? '(none)' : `${ctx.service}@${cell(d.revision)}`);
  ctx.out(...renderDiff(unifiedJsonDiff(previous?.config ?? {}, doc.config), label(previous), label(doc), ctx.palette));
}

function emitDeleted(ctx: CommandContext, previous: ConfigDocument): void {
  if (ctx.globals.json) {
    ctx.json({ event: 'deleted', service_name: ctx.service, previous_revision: previous.revision ?? null });
    return;
  }
  ctx.out(`${formatTime(Date.now())} ${ctx.service} deleted (was revision ${cell(previous.revision)})`);
}
