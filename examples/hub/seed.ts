import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { serviceNameSchema } from '../../src/hub/wire.js';
import type { SeedEntry } from './store/types.js';

export const SEED_FILE = new URL('./seed-configs.json', import.meta.url);

const seedSchema = z.array(
  z.object({
    service_name: serviceNameSchema,
    version: z.string().max(20).optional(),
    description: z.string().optional(),
    tags: z.array(z.string()).optional(),
    config: z.record(z.string(), z.unknown()),
  }),
);

/** The three seed services of the original hub (copied from the shared seed). */
export async function loadSeed(file: URL | string = SEED_FILE): Promise<SeedEntry[]> {
  return seedSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}
