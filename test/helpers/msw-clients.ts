import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { createMswAgent, type MswAgent } from './lab/msw-undici.js';

/** What each test of a file using `useMswClients` gets afresh. */
export interface MswClients {
  /** The msw ↔ undici bridge the clients use as their dispatcher (no handlers until a test adds them). */
  agent: MswAgent;
  /** The clients the test made; closed after it. */
  clients: Array<{ close(): Promise<void> }>;
  /** A temp snapshot directory; removed after the test. */
  snapshotDir: string;
}

/**
 * Registers the per-test hooks of a client file answered through msw: before each test a new agent, an
 * empty client list and a temp dir (`prefix`…); after it, the clients and the agent closed and the dir removed.
 */
export function useMswClients(prefix: string): MswClients {
  const lab = { clients: [] } as unknown as MswClients;
  beforeEach(async () => {
    lab.agent = createMswAgent([]);
    lab.clients = [];
    lab.snapshotDir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    await Promise.all(lab.clients.map((c) => c.close()));
    await lab.agent.close();
    await rm(lab.snapshotDir, { recursive: true, force: true });
  });
  return lab;
}
