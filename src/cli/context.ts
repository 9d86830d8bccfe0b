/**
 * The composition root's shared pieces: the environment (read here and nowhere else), the logger, output,
 * and the one mapping from our error codes to exit codes.
 */
import type { parseArgs, ParseArgsConfig } from 'node:util';
import { Command as Parser, CommanderError, Option } from 'commander';
import { pino, type Logger } from 'pino';
import { DEFAULT_STORE_URL, openEventStore } from '../eventStore/open.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { isSwfError, ValidationError } from '../errors.js';
import { type LogFormat, logFormatFor, prettyLine } from './logFormat.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** `--log-format`, taken by main before the command parses its own options. */
  logFormat?: LogFormat;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** The options the command parses (the declaration `parse` takes), for completion; `--help` is implied. */
  options?: Options;
  /** Subcommands (`events read|streams`), for completion. */
  subcommands?: readonly string[];
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

/**
 * pino to stderr; quiet (warnings and up) unless SWF_LOG_LEVEL says otherwise. JSON lines, or readable lines on a
 * terminal (logFormat.ts decides).
 */
export function makeLogger(io: Io, name = 'swf'): Logger {
  const tty = (io.stderr as Partial<NodeJS.WriteStream>).isTTY === true;
  const format = logFormatFor(io.logFormat, io.env, tty);
  const fd2 = pino.destination({ fd: 2, sync: true });
  const options = { colour: tty, stack: Boolean(io.env.SWF_DEBUG) };
  const sink = format === 'json' ? fd2 : { write: (line: string) => fd2.write(prettyLine(line, options)) };
  return pino({ name, level: io.env.SWF_LOG_LEVEL ?? 'warn' }, sink);
}

/**
 * An option declaration, as node:util's parseArgs takes it (`{ store: { type: 'string' } }`), plus
 * `optionalValue` for a string option whose value may be left out (`--inspect [URL]`: true when it is).
 */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { optionalValue?: boolean };
export type Options = Record<string, OptionSpec>;
type ParseArgsOptions = NonNullable<ParseArgsConfig['options']>;
type WithHelp<T extends ParseArgsOptions> = T & { help: { type: 'boolean'; short: 'h' } };
export type Parsed<T extends ParseArgsOptions> = ReturnType<
  typeof parseArgs<{ args: string[]; options: WithHelp<T>; allowPositionals: true; strict: true }>
>;

/**
 * A command's arguments parsed by commander against its declaration: options anywhere among the positionals,
 * `--opt value` and `--opt=value`, `--` ending the options. A bad flag is one clear line and exit code 2, with
 * "did you mean" for a mistyped option; an option that takes one value given twice is refused, not silently the
 * last one.
 */
export function parse<T extends ParseArgsOptions>(argv: string[], options: T, usage: string): Parsed<T> {
  const all: Options = { ...options, help: { type: 'boolean', short: 'h' } };
  const parser = new Parser()
    .name(usage.split(' ').slice(0, 2).join(' '))
    .helpOption(false)
    .allowExcessArguments()
    .argument('[args...]')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  const attribute = new Map<string, string>();
  for (const [name, spec] of Object.entries(all)) {
    const value = spec.type === 'string' ? (spec.optionalValue ? ' [value]' : ' <value>') : '';
    const option = new Option(`${spec.short ? `-${spec.short}, ` : ''}--${name}${value}`);
    if (spec.multiple) option.argParser((v: string, previous: string[] | undefined) => [...(previous ?? []), v]);
    parser.addOption(option);
    attribute.set(name, option.attributeName());
    let seen = 0;
    if (!spec.multiple)
      parser.on(`option:${name}`, () => {
        if (++seen > 1)
          throw new ValidationError(`--${name} was given more than once; it takes one value\nusage: ${usage}`);
      });
  }
  try {
    parser.parse(argv, { from: 'user' });
  } catch (e: unknown) {
    if (e instanceof CommanderError) throw new ValidationError(`${commanderMessage(e)}\nusage: ${usage}`);
    throw e;
  }
  const opts = parser.opts<Record<string, unknown>>();
  const values: Record<string, unknown> = {};
  for (const [name, attr] of attribute) if (opts[attr] !== undefined) values[name] = opts[attr];
  return { values, positionals: [...parser.args] } as unknown as Parsed<T>;
}

/** A commander error as one of ours: `unknown option '--stor' (did you mean --store?)`. */
export function commanderMessage(e: CommanderError): string {
  return e.message.replace(/^error: /, '').replace(/\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)');
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
