import type { HubProcess } from '../../test/helpers/lab/child-process.js';
import type { NatsServerHandle } from '../../test/helpers/lab/nats-server.js';
import type { PostgresHandle } from '../../test/helpers/lab/postgres-cluster.js';

export interface BenchContext {
  quick: boolean;
  nats: NatsServerHandle;
  pg: PostgresHandle;
  /** The main hub: PostgreSQL + NATS, warn-level logs. */
  hub: HubProcess;
  /** The ~1 KB document every figure reads. */
  service: string;
  docBody: string;
  docEtag: string;
  /** The main hub signs its notices with this key: what clients put in `nats.verifyKeys`. */
  noticeKey: { keyId: string; publicKeyPem: string };
}
