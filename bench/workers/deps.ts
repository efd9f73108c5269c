/** Second floor of figure 7: node + importing what the package loads at startup (undici, zod, lru-cache), nothing else. */
import { performance } from 'node:perf_hooks';
import 'lru-cache';
import 'undici';
import 'zod';

process.stdout.write(`ready ${performance.now()} 0\n`);
