/**
 * Liveness counters: every chaos and property test asserts that the path it is about actually ran (notices
 * delivered, requests answered, faults injected, runs executed), so that a test cannot pass vacuously — as
 * B1 and X3 once did, when their NATS fake stopped delivering and they kept passing on nothing.
 * Each counter is also recorded as a figure (`liveness: …`), so the report shows it.
 */
import { expect } from 'vitest';
import { recordFigure } from './figures.js';

/** Asserts `value ≥ atLeast` (default 1) and records it. */
export function expectLive(row: string, name: string, value: number, atLeast = 1): void {
  recordFigure({ row, name: `liveness: ${name}`, value, unit: 'count' });
  expect(value, `${row}: liveness counter "${name}" is ${value}, expected ≥ ${atLeast}: the test's path did not run`).toBeGreaterThanOrEqual(
    atLeast,
  );
}

/** Asserts that a property ran all its `numRuns` (fast-check stops early only on a failure, which throws). */
export function expectRuns(row: string, executed: number, numRuns: number): void {
  recordFigure({ row, name: 'liveness: property runs executed', value: executed, unit: 'count' });
  expect(executed, `${row}: the property ran ${executed} times, expected numRuns = ${numRuns}`).toBe(numRuns);
}
