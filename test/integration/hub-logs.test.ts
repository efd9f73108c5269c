/**
 * Issue 12: the hub's logs tell the story. One info line per committed write (who, service, revision,
 * action, broadcast, forced), one per refused write (412/422) with the reason, and the NATS connection's
 * state changes with the server, captured from the hub's own pino output (HubOptions.logger) over real
 * sockets; and `npm run hub` shows them at its default level.
 */
import { spawn } from 'node:child_process';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { BATCH_SCHEMA, call, consumers, schemaUpload } from '../helpers/fleet-http.js';
import { KEYS, PrivateNats, SHARED_NATS_URL, startHub, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';

type Line = Record<string, unknown> & { level: number; msg: string };

/** A pino logger at `level` whose lines land, parsed, in `lines` (and their raw text in `raw`). */
function capture(level: pino.Level = 'info') {
  const lines: Line[] = [];
  const raw: string[] = [];
  const logger = pino({ level }, {
    write: (text: string) => {
      raw.push(text);
      lines.push(JSON.parse(text) as Line);
    },
  });
  return { logger, lines, raw };
}

const INFO = 30;
const WARN = 40;

describe('hub logs', () => {
  it('every committed write leaves exactly one info line: who (the key name), service, revision, action, broadcast, forced', async () => {
    const log = capture();
    const { hub } = await startHub('pglite', { seed: false, natsUrl: SHARED_NATS_URL, logger: log.logger });
    try {
      const base = await hub.listen({ host: '127.0.0.1', port: 0 });
      await waitFor(() => hub.broadcaster.connected);
      const service = uniqueService('polygon-log');
      const polygon = { key: KEYS.polygon.key };
      const marker = 'VALUE-w7k2';
      expect((await call(base, 'POST', `${API}/${service}`, { ...polygon, body: { operational: { batch_size: 5 }, note: marker } })).status).toBe(201);
      await consumers(base, service, schemaUpload(BATCH_SCHEMA), ['c-1', 'c-2']);
      expect((await call(base, 'PATCH', `${API}/${service}`, { body: { operational: { batch_size: 6 } } })).status).toBe(200);
      const forced = await call(base, 'POST', `${API}/${service}?force=true&change_reason=incident-42`, { body: { operational: { batch_size: 0 } } });
      expect(forced.status).toBe(200);
      expect(forced.body.forced).toBe(true);
      expect((await call(base, 'POST', `${API}/rollback/${service}`, { ...polygon, body: { revision: 1 } })).status).toBe(200);
      expect((await call(base, 'DELETE', `${API}/${service}`, { headers: { 'if-match': '"4"' } })).status).toBe(200);

      const written = log.lines.filter((l) => l.msg === 'config written');
      expect(written.map(({ level, who, service: s, revision, action, kind, broadcast, forced: f, change_reason }) => ({
        level,
        who,
        service: s,
        revision,
        action,
        kind,
        broadcast,
        forced: f,
        change_reason,
      }))).toEqual([
        { level: INFO, who: 'polygon-rw', service, revision: 1, action: 'created', kind: 'replace', broadcast: 'sent', forced: false, change_reason: undefined },
        { level: INFO, who: 'admin', service, revision: 2, action: 'updated', kind: 'patch', broadcast: 'sent', forced: false, change_reason: undefined },
        { level: INFO, who: 'admin', service, revision: 3, action: 'updated', kind: 'replace', broadcast: 'sent', forced: true, change_reason: 'incident-42' },
        { level: INFO, who: 'polygon-rw', service, revision: 4, action: 'rollback', kind: 'rollback', broadcast: 'sent', forced: false, change_reason: undefined },
        { level: INFO, who: 'admin', service, revision: 5, action: 'deleted', kind: 'delete', broadcast: 'sent', forced: false, change_reason: undefined },
      ]);
      // Each line belongs to its request (pino's reqId), and no line ever holds a config value or a key.
      expect(new Set(written.map((l) => l.reqId)).size).toBe(5);
      const all = log.raw.join('');
      expect(all).not.toContain(marker);
      for (const k of Object.values(KEYS)) expect(all).not.toContain(k.key);
    } finally {
      await hub.close();
    }
  });

  it('a refused write (422: secret keys, the consumers\' schemas; 412: If-Match) leaves one info line with the reason, and no "config written" line', async () => {
    const log = capture();
    const { hub } = await startHub('pglite', { seed: false, logger: log.logger });
    try {
      const base = await hub.listen({ host: '127.0.0.1', port: 0 });
      const service = uniqueService('refused');
      expect((await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 5 } } })).status).toBe(201);
      await consumers(base, service, schemaUpload(BATCH_SCHEMA), ['c-1']);
      const before = log.lines.length;
      expect((await call(base, 'POST', `${API}/${service}`, { body: { db: { password: 'hunter2' } } })).status).toBe(422);
      expect((await call(base, 'PATCH', `${API}/${service}`, { body: { operational: { batch_size: 0 } } })).status).toBe(422);
      expect((await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 7 } }, headers: { 'if-match': '"9"' } })).status).toBe(412);

      const after = log.lines.slice(before);
      expect(after.filter((l) => l.msg === 'config written')).toEqual([]);
      const refused = after.filter((l) => l.msg === 'config write refused');
      expect(refused).toHaveLength(3);
      expect(refused.map((l) => l.level)).toEqual([INFO, INFO, INFO]);
      expect(refused.map(({ who, service: s, kind, outcome, status }) => ({ who, service: s, kind, outcome, status }))).toEqual([
        { who: 'admin', service, kind: 'replace', outcome: 'refused', status: 422 },
        { who: 'admin', service, kind: 'patch', outcome: 'refused', status: 422 },
        { who: 'admin', service, kind: 'replace', outcome: 'conflict', status: 412 },
      ]);
      expect(refused[0]!.reason).toMatch(/secret-looking keys .*: db\.password$/);
      expect(refused[1]!.reason).toBe('1 consumer (1 instance) would reject this config');
      expect(refused[2]).toMatchObject({ reason: 'revision mismatch: If-Match 9, current 1', current_revision: 1 });
      expect(log.raw.join('')).not.toContain('hunter2');
    } finally {
      await hub.close();
    }
  });

  it('NATS connection changes are logged with the server: connected, disconnected (warn), one reconnecting line per outage, reconnected, closed', async () => {
    const nats = await PrivateNats.start();
    const log = capture();
    const { hub } = await startHub('pglite', { seed: false, natsUrl: nats.url, logger: log.logger });
    const server = `127.0.0.1:${nats.port}`;
    const natsLines = () => log.lines.filter((l) => l.component === 'nats');
    try {
      await waitFor(() => hub.broadcaster.connected);
      expect(natsLines()).toEqual([expect.objectContaining({ level: INFO, msg: 'nats connected', server, owned: true })]);

      await nats.stop();
      await waitFor(() => natsLines().some((l) => l.msg === 'nats reconnecting'));
      // Several attempts (500 ms apart) during a 1.5 s outage; only the first one at info.
      await new Promise((r) => setTimeout(r, 1_500));
      await nats.start();
      await waitFor(() => hub.broadcaster.connected, 15_000);
      await waitFor(() => natsLines().some((l) => l.msg === 'nats reconnected'));
      await hub.close();
      await waitFor(() => natsLines().some((l) => l.msg === 'nats connection closed'));

      expect(natsLines().map((l) => [l.level, l.msg])).toEqual([
        [INFO, 'nats connected'],
        [WARN, 'nats disconnected; notices wait in the outbox'],
        [INFO, 'nats reconnecting'],
        [INFO, 'nats reconnected'],
        [INFO, 'nats connection closed'],
      ]);
      const [, disconnected, reconnecting, reconnected] = natsLines();
      expect(disconnected).toMatchObject({ server });
      expect(reconnecting).toMatchObject({ server });
      expect(reconnected).toMatchObject({ server });
      expect(reconnected!.attempts).toBeGreaterThanOrEqual(2);
      expect(reconnected!.down_ms).toBeGreaterThanOrEqual(1_000);
    } finally {
      await hub.close();
      await nats.dispose();
    }
  });

  it('npm run hub shows the write and NATS lines at its default log level (HUB_LOG_LEVEL unset)', async () => {
    const env: Record<string, string | undefined> = { ...process.env, PORT: '0', DISABLE_AUTH: 'true', NATS_URL: SHARED_NATS_URL, DATABASE_URL: '' };
    delete env.HUB_LOG_LEVEL;
    const npm = spawn('npm', ['run', '--silent', 'hub'], { cwd: new URL('../..', import.meta.url).pathname, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    npm.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    npm.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = new Promise((resolve) => npm.once('exit', resolve));
    try {
      await waitFor(() => /hub listening on (http:\/\/\S+)/.test(out), 30_000, 50);
      const url = /hub listening on (http:\/\/\S+)/.exec(out)![1]!;
      const service = uniqueService('npmlog');
      expect((await call(url, 'POST', `${API}/${service}?updated_by=ops-alice`, { body: { a: 1 }, key: null })).status).toBe(201);
      await waitFor(() => err.includes('"msg":"config written"'), 10_000, 50);
      const lines = err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      expect(lines.find((l) => l.msg === 'config written')).toMatchObject({ level: INFO, who: 'ops-alice', service, revision: 1, action: 'created', broadcast: 'sent' });
      expect(lines.find((l) => l.msg === 'nats connected')).toMatchObject({ level: INFO, component: 'nats' });
    } finally {
      npm.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
