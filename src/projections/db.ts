/**
 * The read-model database: one SQLite file of its own (never the store's), in WAL mode so readers never wait for
 * the projector. The only module of `projections/` that imports `better-sqlite3`; everything else sees `ViewsDb`.
 * Driver errors are translated here, like the store adapter does.
 *
 * Also the writer thread (`startWriterThread`): a second connection on a worker thread that applies batches of
 * writes, each with the checkpoints in one transaction, while the main thread reads the log and folds the next
 * batch (a catch-up from empty views uses it; see `writer.ts`).
 */
import { accessSync, constants as fsConstants, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isSwfError, StoreCorruptError, StoreLockedError, StoreUnavailableError } from '../errors.js';

/** A bound parameter: SQL is only ever run with these, never with values spliced into its text. */
export type SqlValue = string | number | bigint | null;
export type SqlParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export interface Statement<Row = Record<string, unknown>> {
  run(params?: SqlParams): { changes: number; lastInsertRowid: number | bigint };
  get(params?: SqlParams): Row | undefined;
  all(params?: SqlParams): Row[];
}

export interface ViewsDb {
  readonly path: string;
  exec(sql: string): void;
  /** Prepared once per SQL text and cached. */
  prepare<Row = Record<string, unknown>>(sql: string): Statement<Row>;
  /** Runs `fn` in a BEGIN IMMEDIATE transaction (the write lock is taken first, so no upgrade deadlock). */
  immediate<T>(fn: () => T): T;
  /** Runs `fn` in a read transaction: several statements see one snapshot. */
  read<T>(fn: () => T): T;
  close(): void;
}

export interface OpenViewsOptions {
  /** How long a writer waits for another process's write lock. Default 5 000 ms. */
  busyTimeoutMs?: number;
}

/** Translates a driver error (or one rebuilt from the writer thread's code and message) into ours. */
export function translateViewsError(e: unknown, path: string): unknown {
  if (isSwfError(e)) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : '';
  const msg = e instanceof Error ? e.message : String(e);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreLockedError(`the views database ${path} stayed locked by another process (${msg})`, { cause: e });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new StoreCorruptError(`${path} is not a swf-es views database (${msg})`, { cause: e });
  }
  if (code === 'SQLITE_FULL')
    return new StoreUnavailableError(`cannot write the views database ${path}: the disk is full (${msg})`, {
      cause: e,
    });
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR')) {
    let why = '';
    try {
      accessSync(dirname(path), fsConstants.W_OK);
    } catch (err: unknown) {
      // SQLite only says "unable to open database file": name the cause an operator can act on.
      const c = (err as { code?: unknown }).code;
      if (c === 'EROFS') why = `the file system holding ${dirname(path)} is read-only: `;
      else if (c === 'EACCES' || c === 'EPERM') why = `no permission to write ${dirname(path)}: `;
    }
    return new StoreUnavailableError(`cannot use the views database ${path}: ${why}${msg}`, { cause: e });
  }
  return e;
}

export function pragmasFor(file: string, options: OpenViewsOptions): string[] {
  return [
    `busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`,
    // Bigger pages: fewer splits for the message store's rows (set before the first table; a no-op afterwards).
    'page_size = 16384',
    ...(file !== ':memory:' ? ['journal_mode = WAL'] : []),
    'synchronous = NORMAL',
    'cache_size = -65536',
    'temp_store = MEMORY',
    'foreign_keys = OFF',
  ];
}

const bind = (params: SqlParams | undefined): unknown[] =>
  params === undefined ? [] : Array.isArray(params) ? (params as unknown[]) : [params];

/** Opens (creating the folder and file if needed) the views database at `path` (`:memory:` for tests). */
export function openViewsDb(path: string, options: OpenViewsOptions = {}): ViewsDb {
  const file = path === ':memory:' ? ':memory:' : resolve(path);
  let db: Database.Database;
  try {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
    for (const p of pragmasFor(file, options)) db.pragma(p);
  } catch (e: unknown) {
    throw translateViewsError(e, file);
  }
  const cache = new Map<string, Database.Statement>();
  const statement = (sql: string): Database.Statement => {
    let s = cache.get(sql);
    if (!s) {
      try {
        s = db.prepare(sql);
      } catch (e: unknown) {
        throw translateViewsError(e, file);
      }
      cache.set(sql, s);
    }
    return s;
  };
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (...args: A): R => {
      try {
        return fn(...args);
      } catch (e: unknown) {
        throw translateViewsError(e, file);
      }
    };
  return {
    path: file,
    exec: guard((sql: string) => {
      db.exec(sql);
    }),
    prepare<Row>(sql: string): Statement<Row> {
      const s = statement(sql);
      const returnsRows = s.reader;
      return {
        run: guard((params?: SqlParams) => {
          const r = s.run(...bind(params));
          return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
        }),
        get: guard((params?: SqlParams) => (returnsRows ? (s.get(...bind(params)) as Row | undefined) : undefined)),
        all: guard((params?: SqlParams) => (returnsRows ? (s.all(...bind(params)) as Row[]) : [])),
      };
    },
    immediate: guard(<T>(fn: () => T): T => db.transaction(fn).immediate()),
    read: guard(<T>(fn: () => T): T => db.transaction(fn).deferred()),
    close: () => {
      if (db.open) db.close();
    },
  };
}

// ---- the writer thread ---------------------------------------------------------------------------

/** How a slot of `WriterBatch.tags` says where its parameter is. */
export const SLOT = {
  /** In `numbers`. */
  NUMBER: 0,
  /** The next of `strings`. */
  STRING: 1,
  NULL: 2,
  /** The same string as this parameter of the statement's previous write (in this batch or an earlier one). */
  SAME: 3,
} as const;

/**
 * A batch for the writer thread, applied in one IMMEDIATE transaction with the checkpoints it moves.
 *
 * The writes are slots: the statement number, the parameter count, then each parameter; and again, for `slots`
 * slots. Numbers travel in a `Float64Array` and tags in a `Uint8Array`, both moved to the thread without a copy;
 * only the strings are copied (`postMessage` copies an array value by value, at a cost per value that made it the
 * main thread's largest cost of a catch-up), and a string repeated from the statement's previous write is not sent
 * at all (rows repeat much: namespace, execution, run, sample, queue).
 */
export interface WriterBatch {
  t: 'batch';
  seq: number;
  /** Statements first used in this batch; the thread numbers them after the ones it has, in this order. */
  sqls: string[];
  slots: number;
  /** Each slot's kind (`SLOT`); the statement number and count slots are numbers. */
  tags: Uint8Array<ArrayBuffer>;
  numbers: Float64Array<ArrayBuffer>;
  strings: string[];
  /** Each projection's checkpoint as the batch expects to find it: another value means another process wrote. */
  expect: [string, number][];
  /** The checkpoints the batch moves: name, position, event id. */
  set: [string, number, string][];
}

/** The last request: `sql` in one IMMEDIATE transaction, then a TRUNCATE checkpoint, then the thread ends. */
export interface WriterFinish {
  t: 'finish';
  sql: string[];
}

/** Ends the thread without anything more (after a conflict or a failure, or when the fold failed). */
export interface WriterClose {
  t: 'close';
}

export type WriterReply =
  | { t: 'ok'; seq: number }
  /** The stored checkpoints were not the expected ones: nothing written, and every later batch is skipped. */
  | { t: 'conflict'; seq: number }
  | { t: 'skipped'; seq: number }
  /** The batch (or the finish, seq -1) failed and was rolled back; every later batch is skipped. */
  | { t: 'error'; seq: number; message: string; code: string }
  | { t: 'finished' };

export interface WriterThread {
  readonly worker: Worker;
  /** Shared with the thread: [0] the last batch answered, [1] 0, or 1 after a conflict, 2 after an error. */
  readonly state: Int32Array;
  post(request: WriterBatch | WriterFinish | WriterClose): void;
}

/** What the writer thread is started with (its `workerData`). */
export interface WriterData {
  path: string;
  pragmas: string[];
  state: SharedArrayBuffer;
}

/**
 * The writer thread's module. Run from the built `dist/` (a worker cannot load TypeScript): when this file is
 * the source itself (tests run under vitest), the built copy beside `dist/src/` is used.
 */
function writerThreadModule(): URL {
  const url = new URL('./writerThread.js', import.meta.url);
  if (existsSync(url)) return url;
  const built = fileURLToPath(url).replace(/([\\/])src([\\/]projections[\\/]writerThread\.js)$/, '$1dist$1src$2');
  if (!existsSync(built)) {
    throw new Error(`the views writer thread's module is not built (${built}): run npm run build`);
  }
  return pathToFileURL(built);
}

/** Starts a writer thread on the views database at `path` (a file: `:memory:` has no second connection). */
export function startWriterThread(path: string, options: OpenViewsOptions = {}): WriterThread {
  const file = resolve(path);
  const state = new Int32Array(new SharedArrayBuffer(8));
  const data: WriterData = {
    path: file,
    pragmas: pragmasFor(file, options).filter((p) => !p.startsWith('page_size') && !p.startsWith('journal_mode')),
    state: state.buffer,
  };
  const worker = new Worker(writerThreadModule(), { workerData: data });
  return {
    worker,
    state,
    post: (request) =>
      worker.postMessage(request, request.t === 'batch' ? [request.tags.buffer, request.numbers.buffer] : []),
  };
}
