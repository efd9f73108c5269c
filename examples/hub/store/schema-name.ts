/** The one shape of `pgSchema` both stores accept: a plain lower-case identifier, safe to quote into DDL. */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_PATTERN.test(schema)) throw new TypeError(`pgSchema must match ${SCHEMA_PATTERN}`);
}
