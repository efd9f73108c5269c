/**
 * A write checked against its consumers (docs/fleet.md §4): the distinct schema hashes of the live
 * instances of the service, their validators loaded **before** the write's transaction (`prepare`), then
 * run synchronously on the config the write would leave, inside it (`run`, from `checkResult`).
 */
import type { ConfigObject } from '../../../src/hub/wire.js';
import { HubError } from '../errors.js';
import type { InstanceRegistry } from './instance-registry.js';
import { type ConsumerIssue, dedupeIssues, issuesOf } from './issues.js';
import { checkCost, configSize } from './schema-bounds.js';
import { type CompiledSchema, ISSUE_LIMIT_MESSAGE, MAX_COLLECTED_ISSUES, type SchemaRegistry } from './schema-registry.js';

/** Instance ids listed per consumer at most. */
export const MAX_INSTANCE_IDS = 20;
/**
 * Distinct schemas checked per write at most: of the hashes the hub holds, the ones most instances run.
 * The rest, and hashes the hub does not hold, are listed as unknown.
 */
export const MAX_CHECKED_SCHEMAS = 64;
const MAX_LISTED_HASHES = 200;
const MAX_UNCHECKED = 100;
/**
 * A consumer's check is skipped (listed as unchecked, kind `too-costly`) when its schema's cost (weighted
 * schema objects applied to one value, schema-bounds.ts) times the config's size (values, and characters
 * by 16) exceeds this: ≈ 25 ms of validation at worst on the reference machine (docs/fleet.md "Limits").
 */
export const MAX_CHECK_COST = 1_000_000;

const TOO_MANY_ISSUES: ConsumerIssue = {
  path: '',
  message: `more than ${MAX_COLLECTED_ISSUES} issues: the check stopped`,
  keyword: 'maxIssues',
};

export interface ConsumerResult {
  schema_hash: string;
  instances: number;
  instance_ids: string[];
  issues: ConsumerIssue[];
}

export interface UncheckedPart {
  schema_hash: string;
  path: string;
  kind: string;
}

export interface ConsumerVerdict {
  /** Every distinct issue, over all consumers. */
  issues: ConsumerIssue[];
  /** Every consumer checked, each with its issues (empty when it accepts the config). */
  consumers: ConsumerResult[];
  /** What JSON Schema could not express, per checked schema (the clients still check it). */
  unchecked: UncheckedPart[];
  /** Schema hashes live instances run that the hub does not hold (not checked). */
  unknown_schemas: string[];
}

interface Consumer {
  schema: CompiledSchema;
  instances: number;
  instance_ids: string[];
}

export class ConsumerCheck {
  readonly #consumers: readonly Consumer[];
  readonly #unknown: readonly string[];

  private constructor(consumers: readonly Consumer[], unknown: readonly string[]) {
    this.#consumers = consumers;
    this.#unknown = unknown;
  }

  /**
   * Loads the validators of the live consumers of `service` (two queries at most; none are compiled
   * twice). Only hashes the hub holds are ranked for the checked set: reported hashes it does not hold
   * (anyone with a read key can report any) are listed as unknown and never crowd out known ones.
   */
  static async prepare(instances: InstanceRegistry, schemas: SchemaRegistry, service: string): Promise<ConsumerCheck> {
    const groups = await instances.schemas(service, { idLimit: MAX_INSTANCE_IDS, groupLimit: MAX_LISTED_HASHES });
    const checked = groups.filter((g) => g.held).slice(0, MAX_CHECKED_SCHEMAS);
    const compiled = checked.length === 0 ? new Map<string, CompiledSchema>() : await schemas.load(checked.map((g) => g.schema_hash));
    const consumers: Consumer[] = [];
    const unknown: string[] = [];
    for (const group of groups) {
      const schema = compiled.get(group.schema_hash);
      if (schema === undefined) unknown.push(group.schema_hash);
      else consumers.push({ schema, instances: group.instances, instance_ids: group.instance_ids });
    }
    return new ConsumerCheck(consumers, unknown);
  }

  /** Whether any consumer was found (live instances with a schema the hub holds). */
  get consumerCount(): number {
    return this.#consumers.length;
  }

  /** Runs every consumer's validator on `config`. Synchronous: it runs inside the write's transaction. */
  run(config: ConfigObject): ConsumerVerdict {
    const consumers: ConsumerResult[] = [];
    const unchecked: UncheckedPart[] = [];
    const note = (schema_hash: string, path: string, kind: string) => {
      if (unchecked.length < MAX_UNCHECKED) unchecked.push({ schema_hash, path, kind });
    };
    const size = this.#consumers.length === 0 ? undefined : configSize(config);
    for (const c of this.#consumers) {
      const hash = c.schema.hash;
      if (size !== undefined && checkCost(c.schema.cost, size) > MAX_CHECK_COST) {
        // Not run: a schema this costly on a config this large would stall the hub (the client still checks).
        note(hash, '', 'too-costly');
        continue;
      }
      let issues: ConsumerIssue[];
      try {
        issues = c.schema.validate(config) ? [] : issuesOf(c.schema.validate.errors);
      } catch (error) {
        if (error instanceof Error && error.message === ISSUE_LIMIT_MESSAGE) {
          // Stopped: the config is that far from what the consumer accepts (or the schema is hostile).
          issues = [TOO_MANY_ISSUES];
        } else {
          // A shape the bounds did not foresee (e.g. a stack overflow in Ajv's code): not checked, never a 500.
          note(hash, '', 'check-failed');
          continue;
        }
      }
      consumers.push({ schema_hash: hash, instances: c.instances, instance_ids: c.instance_ids, issues });
      for (const u of c.schema.unrepresented) note(hash, u.path, u.kind);
      for (const u of c.schema.hubUnchecked) note(hash, u.path, u.kind);
    }
    return {
      issues: dedupeIssues(consumers.flatMap((c) => c.issues)),
      consumers,
      unchecked,
      unknown_schemas: [...this.#unknown],
    };
  }
}

/** The consumers that would reject the config. */
export const rejecting = (verdict: ConsumerVerdict): ConsumerResult[] => verdict.consumers.filter((c) => c.issues.length > 0);

/** "2 consumers (3 instances) would reject this config". */
export function refusalDetail(verdict: ConsumerVerdict): string {
  const refusing = rejecting(verdict);
  const instances = refusing.reduce((n, c) => n + c.instances, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(refusing.length, 'consumer')} (${plural(instances, 'instance')}) would reject this config`;
}

/** The 422 of a write (or a dry run) its consumers would reject: `consumers` lists the rejecting ones. */
export function refusal(verdict: ConsumerVerdict): HubError {
  return new HubError(422, refusalDetail(verdict), {
    extra: {
      issues: verdict.issues,
      consumers: rejecting(verdict),
      unchecked: verdict.unchecked,
      unknown_schemas: verdict.unknown_schemas,
    },
  });
}

/** What a forced write records in its audit row (`override`) and adds to its answer. */
export function overrideOf(verdict: ConsumerVerdict): { forced: true; issues: ConsumerIssue[]; consumers: ConsumerResult[]; unknown_schemas: string[] } {
  return { forced: true, issues: verdict.issues, consumers: rejecting(verdict), unknown_schemas: verdict.unknown_schemas };
}

/**
 * The consumer step of a write's `checkResult`: a config its consumers would reject is refused (422),
 * unless `force`, when the verdict becomes the audit row's override (and `onForced` gets it).
 */
export function checkWrite(
  check: ConsumerCheck,
  config: ConfigObject,
  force: boolean,
  onForced: (verdict: ConsumerVerdict) => void,
): { override: Record<string, unknown> } | undefined {
  if (check.consumerCount === 0 && !force) return undefined;
  const verdict = check.run(config);
  if (force) {
    onForced(verdict);
    return { override: overrideOf(verdict) };
  }
  if (rejecting(verdict).length > 0) throw refusal(verdict);
  return undefined;
}
