/**
 * The composition root's shared pieces: the environment (read here and nowhere else), the logger, output,
 * and the one mapping from our error codes to exit codes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pino, type Logger } from 'pino';
import { DEFAULT_STORE_URL, openEventStore } from '../eventStore/open.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { isSwfError, ValidationError } from '../errors.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}

export const STORE_OPTION = { store: { type: 'string' } } as const;

export function storeUrl(values: { store?: string | undefined }, io: Io): string {
  return values.store ?? io.env.SWF_STORE ?? DEFAULT_STORE_URL;
}

/**
 * The store a command names. Commands that only read it (`existing`) refuse a path with no store, so a mistyped
 * `--store` is an error rather than a new empty store; those that write, or follow it live, create it.
 */
export async function openStore(
  values: { store?: string | undefined },
  io: Io,
  use: 'create' | 'existing' | 'shared' = 'create',
  options: { durable?: boolean } = {},
): Promise<EventStore> {
  const url = storeUrl(values, io);
  // A `memory:` store lives and dies with this process: nobody else could write the events this command waits for.
  if (use === 'shared' && url.startsWith('memory:'))
    throw new ValidationError(
      `--store ${url}: this command works with other processes through the store, and a memory: store is private to one process; use sqlite:PATH`,
      { field: 'store' },
    );
  return openEventStore(url, { mustExist: use === 'existing', logger: makeLogger(io, 'store'), ...options });
}

/** pino to stderr; quiet (warnings and up) unless SWF_LOG_LEVEL says otherwise. */
export function makeLogger(io: Io, name = 'swf'): Logger {
  return pino({ name, level: io.env.SWF_LOG_LEVEL ?? 'warn' }, pino.destination({ fd: 2, sync: true }));
}

/** parseArgs with our error type, so a bad flag is one clear line and exit code 2. */
type Options = NonNullable<ParseArgsConfig['options']>;
type WithHelp<T extends Options> = T & { help: { type: 'boolean'; short: 'h' } };
export type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: WithHelp<T>; allowPositionals: true; strict: true }>
>;

export function parse<T extends Options>(argv: string[], options: T, usage: string): Parsed<T> {
  try {
    const all = { ...options, help: { type: 'boolean', short: 'h' } } as WithHelp<T>;
    const parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true, tokens: true });
    // parseArgs keeps the last of a repeated single-value option (`--at 5 --at 6`): refuse it instead.
    const seen = new Set<string>();
    for (const t of parsed.tokens) {
      if (t.kind !== 'option' || (all[t.name] as { multiple?: boolean } | undefined)?.multiple) continue;
      if (seen.has(t.name)) throw new Error(`--${t.name} was given more than once; it takes one value`);
      seen.add(t.name);
    }
    const { tokens: _tokens, ...rest } = parsed;
    return rest;
  } catch (e: unknown) {
    throw new ValidationError(`${e instanceof Error ? e.message : String(e)}\nusage: ${usage}`);
  }
}

/** JSON with bigints as numbers (positions and revisions print as JSON numbers). */
export const toJson = (value: unknown, space?: number): string =>
  JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), space);

export function exitCodeOf(e: unknown): number {
  if (!isSwfError(e)) return 1;
  switch (e.code) {
    case 'VALIDATION':
      return 2;
    case 'NOT_FOUND':
      return 3;
    case 'CONCURRENCY':
    case 'ILLEGAL_STATE':
      return 4;
    case 'STORE_UNAVAILABLE':
    case 'STORE_LOCKED':
    case 'STORE_CORRUPT':
      return 5;
  }
}

export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new ValidationError(`${flag} must be a whole number >= 0, got '${value}'`, { field: flag });
  return Number(value);
}
