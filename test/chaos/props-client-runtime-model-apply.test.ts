/**
 * M2: the model-based test of the client runtime (test/chaos/runtime-model.ts says what it runs and checks)
 * with `nats.applyPayload: true`: a valid payload is applied, unconfirmed (source `notice`, never written to
 * the snapshot), a forged one included, until a hub answer confirms or replaces it; a payload not newer than
 * the unconfirmed one being served is never applied. 200 runs of ≤ 8 commands.
 */
import { describe, it } from 'vitest';
import { ETAG_MODE, NUM_RUNS, runModel, useRuntimeModel } from './runtime-model.js';

useRuntimeModel();

describe('model: client runtime (nats.applyPayload: a valid payload is applied, unconfirmed)', () => {
  it(`M2: the same commands and invariants, payloads applied (source notice, never in the snapshot) until a hub answer confirms or replaces them (${NUM_RUNS} runs; hub ETag ${ETAG_MODE})`, () => runModel('M2', true), 180_000);
});
