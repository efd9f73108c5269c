import type { ConfigObject } from '../../src/hub/wire.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7396 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces. Pure. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export function mergeConfig(current: ConfigObject, patch: ConfigObject): ConfigObject {
  return applyMergePatch(current, patch) as ConfigObject;
}
