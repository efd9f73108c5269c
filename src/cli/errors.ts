/**
 * The CLI's failures, each with the exit code it ends in (README "CLI", `central-hub --help`):
 * 1 the hub refused (4xx, a conflict), 2 a usage error, 3 the hub unreachable or failing.
 */

/** 0 ok · 1 refused or conflict · 2 usage · 3 unreachable (network error, timeout, 5xx, a broken answer). */
export type ExitCode = 0 | 1 | 2 | 3;

export class CliError extends Error {
  readonly exitCode: Exclude<ExitCode, 0>;
  /** Lines printed to stderr after the message (issues, consumers, hints). */
  readonly details: readonly string[];
  /** With `--json`: the one document printed to stdout for this failure. */
  readonly json: unknown;

  constructor(exitCode: Exclude<ExitCode, 0>, message: string, options: { details?: readonly string[]; json?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = exitCode;
    this.details = options.details ?? [];
    this.json = options.json;
  }

  override get name(): string {
    return 'CliError';
  }
}

/** A bad invocation: unknown flag, missing argument, unreadable input. Exit 2. */
export class UsageError extends CliError {
  /** The command whose usage to point at, when known. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(2, message);
    this.command = command;
  }

  override get name(): string {
    return 'UsageError';
  }
}

/** The hub answered a 4xx (or a precondition failed). Exit 1. */
export class HubRefusedError extends CliError {
  readonly status: number;
  /** The parsed error body (`{ detail, … }`), or undefined when it was not JSON. */
  readonly body: Record<string, unknown> | undefined;

  constructor(status: number, message: string, body: Record<string, unknown> | undefined, details: readonly string[] = []) {
    super(1, message, { details, json: { error: { status, ...(body ?? { detail: message }) } } });
    this.status = status;
    this.body = body;
  }

  override get name(): string {
    return 'HubRefusedError';
  }
}

/** No answer, a timeout, a 5xx, or an answer that breaks the wire contract. Exit 3. */
export class HubUnreachableError extends CliError {
  readonly status: number | undefined;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(3, message, { cause: options.cause, json: { error: { status: options.status ?? null, detail: message } } });
    this.status = options.status;
  }

  override get name(): string {
    return 'HubUnreachableError';
  }
}
