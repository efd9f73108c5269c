/** What every command gets: the hub client, the parsed flags, output helpers and the input reader. */
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import type { ConfigObject } from '../hub/wire.js';
import type { FlagValues, Globals } from './args.js';
import { UsageError } from './errors.js';
import { canonicalPretty, escapeC1 } from './json-diff.js';
import type { Palette } from './format.js';
import type { HubHttp } from './http.js';

/** Where the CLI writes: `process.stdout`/`stderr`, or a test's collector. */
export interface TextSink {
  write(chunk: string): unknown;
}

/** Readable input: `process.stdin`, or any async iterable of chunks (tests). */
export type InputStream = AsyncIterable<string | Uint8Array> & { isTTY?: boolean | undefined };

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  /** Read by `set`/`patch`/`validate`/`diff --file -` without a file; absent: those need `--file`. */
  stdin?: InputStream | undefined;
  /** Whether stdout is a terminal (ANSI colour). @default false */
  isTTY?: boolean | undefined;
  /** An undici dispatcher for the hub requests instead of the CLI's own Agent (tests). */
  dispatcher?: Dispatcher | undefined;
  /** Ends `watch` like SIGINT/SIGTERM do. */
  signal?: AbortSignal | undefined;
}

/** Input bodies are bounded well above the hub's 1 MiB limit: the hub says no with a better message. */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024;

export class CommandContext {
  readonly hub: HubHttp;
  readonly globals: Globals;
  readonly args: readonly string[];
  readonly flags: FlagValues;
  readonly palette: Palette;
  readonly io: CliIo;
  readonly command: string;

  constructor(init: { hub: HubHttp; globals: Globals; args: readonly string[]; flags: FlagValues; palette: Palette; io: CliIo; command: string }) {
    this.hub = init.hub;
    this.globals = init.globals;
    this.args = init.args;
    this.flags = init.flags;
    this.palette = init.palette;
    this.io = init.io;
    this.command = init.command;
  }

  get service(): string {
    return this.args[0]!;
  }

  /** One line to stdout (human mode only: with `--json` stdout carries the one document). */
  out(...lines: string[]): void {
    for (const line of lines) this.io.stdout.write(`${line}\n`);
  }

  err(...lines: string[]): void {
    for (const line of lines) this.io.stderr.write(`${line}\n`);
  }

  /** The `--json` document (compact when not on a terminal). */
  json(document: unknown): void {
    this.io.stdout.write(`${this.io.isTTY === true ? canonicalPretty(document) : escapeC1(JSON.stringify(document))}\n`);
  }

  /** The JSON object of `--file F` (`-`: stdin) or, without `--file`, of stdin. Unreadable or not an object → exit 2. */
  async readObject(what: string): Promise<ConfigObject> {
    const file = typeof this.flags.file === 'string' ? this.flags.file : '-';
    const source = file === '-' ? 'stdin' : file;
    let text: string;
    if (file === '-') {
      const stdin = this.io.stdin;
      if (stdin === undefined || stdin.isTTY === true) {
        throw new UsageError(`${this.command} needs the ${what}: pass --file F or pipe the JSON on stdin`, this.command);
      }
      text = await readStream(stdin, this.command);
    } else {
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, this.command);
      }
    }
    if (Buffer.byteLength(text) > MAX_INPUT_BYTES) throw new UsageError(`${source} is larger than ${MAX_INPUT_BYTES} bytes`, this.command);
    if (text.trim() === '') throw new UsageError(`${source} is empty: expected a JSON object (the ${what})`, this.command);
    let value: unknown;
    try {
      value = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new UsageError(`${source} is not valid JSON: ${(error as Error).message}`, this.command);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new UsageError(`${source} must hold a JSON object (the ${what})`, this.command);
    }
    return value as ConfigObject;
  }
}

async function readStream(stream: InputStream, command: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    size += buffer.length;
    if (size > MAX_INPUT_BYTES) throw new UsageError(`stdin is larger than ${MAX_INPUT_BYTES} bytes`, command);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
