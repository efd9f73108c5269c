/**
 * The NATS side of `watch`: a subscription to the exact subject `config.update.<service>`; every notice
 * and every reconnect triggers a refetch (the notice's payload is never trusted). Reconnects forever.
 */
import { connect, type NatsConnection } from 'nats';
import { subjectFor } from '../../hub/wire.js';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';

export interface Notices {
  close(): Promise<void>;
}

export async function openNotices(ctx: CommandContext, url: string, trigger: () => Promise<void>, signal: AbortSignal): Promise<Notices> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: url,
      name: 'central-hub-cli',
      timeout: Math.min(ctx.globals.timeoutMs, 10_000),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      pingInterval: 10_000,
    });
  } catch (error) {
    throw new CliError(3, `NATS ${url} unreachable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const subject = subjectFor(ctx.service);
  let subscribed = false;
  let refused: Error | undefined;
  nc.subscribe(subject, {
    callback: (error) => {
      if (error === null) void trigger();
      else if (subscribed) ctx.err(`# NATS subscription to ${subject} failed: ${error.message}`);
      else refused = error;
    },
  });
  void (async () => {
    for await (const status of nc.status()) {
      if (signal.aborted) return;
      if (status.type === 'disconnect') ctx.err('# NATS disconnected; reconnecting');
      else if (status.type === 'reconnect') {
        ctx.err('# NATS reconnected; refetching (notices sent meanwhile are lost)');
        void trigger();
      }
    }
  })().catch(() => undefined);
  // A change committed before the subscription reached the server has no notice for us: flush, refetch once,
  // and only then say that every later change will be seen.
  await nc.flush();
  // The server answers a subscription it refuses (permissions) before the flush's PONG: a watch that went
  // on would never see a change (without --interval-ms, nothing else would tell it).
  if (refused !== undefined) {
    await nc.close().catch(() => undefined);
    const message = `NATS refused the subscription to ${subject}: ${refused.message}`;
    throw new CliError(1, message, { cause: refused, json: { error: { status: null, detail: message } } });
  }
  subscribed = true;
  await trigger();
  ctx.err(`# subscribed to ${subject} at ${url}`);
  return {
    async close() {
      await nc.close().catch(() => undefined);
    },
  };
}
