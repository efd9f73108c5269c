import type { z } from 'zod';
import type { ServiceDefinition } from './options.js';

/**
 * Identity helper that checks `defaults` against the schema's input type at compile time
 * (an inline object literal in `services` is only checked loosely).
 */
export function defineService<Schema extends z.ZodType>(
  definition: ServiceDefinition<Schema> & { schema: Schema },
): ServiceDefinition<Schema> & { schema: Schema } {
  return definition;
}
