/**
 * Zod schemas as JSON Schema 2020-12, the dialect of OpenAPI 3.1: the route schemas of the hub's OpenAPI
 * document are generated from the zod schemas that parse the wire (`src/hub/wire.ts`, `src/fleet/wire.ts`,
 * the routes' own query and body schemas), so there is one source of truth.
 */
import { z } from 'zod';

export type JsonSchema = Record<string, unknown>;

const cache = new WeakMap<z.ZodType, JsonSchema>();

/**
 * A `z.custom` check is opaque to JSON Schema (zod writes `{}`, any value). The wire schemas' only one is
 * "a JSON object" (`config`); a custom check that accepts `{}` and refuses an array, `null`, a string and a
 * number is documented as `type: object`, any other stays `{}` (a superset, never a false promise).
 */
function isObjectCheck(schema: z.ZodType): boolean {
  return schema.safeParse({}).success && ![[], null, '', 0].some((v) => schema.safeParse(v).success);
}

/**
 * `schema` as JSON Schema 2020-12, without `$schema` (an OpenAPI Schema Object takes the document's dialect).
 * The **input** side: what travels on the wire, before a parser's transforms and coercions (the client's
 * parsers of hub answers, the hub's parsers of requests). Transforms are documented as their input;
 * anything else JSON Schema cannot say becomes `{}`. Cached per schema: the route files convert at import.
 */
export function jsonSchemaOf(schema: z.ZodType, description?: string): JsonSchema {
  let converted = cache.get(schema);
  if (converted === undefined) {
    converted = z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io: 'input',
      unrepresentable: 'any',
      override: (ctx) => {
        const inner = ctx.zodSchema as unknown as z.ZodType;
        if (inner._zod.def.type === 'custom' && isObjectCheck(inner)) ctx.jsonSchema.type = 'object';
      },
    }) as JsonSchema;
    delete converted.$schema;
    cache.set(schema, converted);
  }
  // A copy: callers add descriptions and response headers, and the cached one is shared.
  return description === undefined ? { ...converted } : { ...converted, description };
}
