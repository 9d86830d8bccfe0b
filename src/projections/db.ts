/**
 * The read-model database: one SQLite file of its own (never the store's), in WAL mode so readers never wait for
 * the projector. The only module of `projections/` that imports `better-sqlite3`; everything else sees `ViewsDb`.
 * Driver errors are translated here, like the store adapter does.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { StoreCorruptError, StoreLockedError, StoreUnavailableError, SwfError } from '../errors.js';

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

function translate(e: unknown, path: string): unknown {
  if (e instanceof SwfError) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : '';
  const msg = e instanceof Error ? e.message : String(e);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreLockedError(`the views database ${path} stayed locked by another process (${msg})`, { cause: e });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new StoreCorruptError(`${path} is not a swf-es views database (${msg})`, { cause: e });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR')) {
    return new StoreUnavailableError(`cannot use the views database ${path}: ${msg}`, { cause: e });
  }
  return e;
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
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    // Bigger pages: fewer splits for the message store's rows (set before the first table; a no-op afterwards).
    db.pragma('page_size = 16384');
    if (file !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -65536');
    db.pragma('temp_store = MEMORY');
    db.pragma('foreign_keys = OFF');
  } catch (e: unknown) {
    throw translate(e, file);
  }
  const cache = new Map<string, Database.Statement>();
  const statement = (sql: string): Database.Statement => {
    let s = cache.get(sql);
    if (!s) {
      try {
        s = db.prepare(sql);
      } catch (e: unknown) {
        throw translate(e, file);
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
        throw translate(e, file);
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
