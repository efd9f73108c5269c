/** The three layers of one service resolved into its validated config; the env layer is read once. */
import { type EnvLayer, readEnvLayer } from '../layers/env.js';
import type { PlainObject } from '../layers/paths.js';
import { type Resolved, resolveConfig } from '../layers/resolve.js';
import type { EnvSource } from '../layers/env.js';
import type { ServiceDefinition } from '../options.js';

export class LayerResolver {
  readonly criticalPaths: readonly string[];
  readonly #service: string;
  readonly #definition: ServiceDefinition;
  readonly #envSource: EnvSource;
  #env: EnvLayer | undefined;

  constructor(service: string, definition: ServiceDefinition, env: EnvSource) {
    this.#service = service;
    this.#definition = definition;
    this.#envSource = env;
    this.criticalPaths = Object.keys(definition.env ?? {});
  }

  /** Throws `ConfigInvalidError` when the merged layers fail the schema. */
  resolve(hub: PlainObject | undefined): Resolved {
    this.#env ??= readEnvLayer(this.#definition.env, this.#envSource, this.#definition.schema);
    return resolveConfig({
      service: this.#service,
      schema: this.#definition.schema,
      defaults: this.#definition.defaults as PlainObject | undefined,
      hub,
      env: this.#env,
      criticalPaths: this.criticalPaths,
    });
  }
}
