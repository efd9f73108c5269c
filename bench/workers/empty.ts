/** The floor of figures 6 and 7: a node process that loads nothing. */
import { performance } from 'node:perf_hooks';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  for (let i = 0; i < 4; i++) gc();
}
process.stdout.write(`ready ${performance.now()} ${process.memoryUsage().heapUsed}\n`);
