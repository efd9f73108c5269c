/**
 * M1: the model-based test of the client runtime (test/chaos/runtime-model.ts says what it runs and checks),
 * in the default mode: a notice is only a hint to refetch; forged, malformed and deep notices never change
 * the value. 200 runs of ≤ 8 commands on the shared nats-server and two msw hubs.
 */
import { describe, it } from 'vitest';
import { ETAG_MODE, MAX_COMMANDS, NUM_RUNS, runModel, useRuntimeModel } from './runtime-model.js';

useRuntimeModel();

describe('model: client runtime (default mode: a notice is a hint)', () => {
  const what = `hub writes / deletes / restores / outages / failover to a lagging replica, valid / stale / forged / malformed / deep notices, ticks, a notice racing a tick, get, close and restarts from the snapshot against a reference model (${NUM_RUNS} runs, ≤ ${MAX_COMMANDS} commands + up to 11 closing ones; hub ETag ${ETAG_MODE})`;
  it(`M1: ${what}`, () => runModel('M1', false), 180_000);
});
