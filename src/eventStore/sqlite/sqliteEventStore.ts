/**
 * The embedded store: one SQLite file in WAL mode, shared by any number of processes on one machine.
 *
 * - Writes run in IMMEDIATE transactions, so the expected-revision check and the insert see the same state
 *   even when several processes append to one stream.
 * - Positions are the table's integer primary key: writers are serialized, so positions grow in commit order
 *   and a reader polling "position > cursor" never skips an event.
 * - Subscribers in other processes learn of new events by polling `PRAGMA data_version` (a few microseconds)
 *   every few milliseconds while someone waits; appends in this process wake them at once (and, when the commit
 *   finds data_version moved since the poller looked, wake every subscriber: another process committed meanwhile).
 */
import { accessSync, constants as fsConstants, existsSync, mkdirSync, statfsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { startCheckpointer } from './checkpointer.js';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  ConcurrencyError,
  isDamagedEventError,
  isSwfError,
  StoreCorruptError,
  StoreLockedError,
  StoreUnavailableError,
} from '../../errors.js';
import {
  type AppendResult,
  type Checkpoint,
  type CommitResult,
  type EventStore,
  type GroupOptions,
  type NewEvent,
  type ParkedEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type StreamAppend,
  StreamNotFoundError,
  type SubscribeToAllOptions,
  type SubscribeToStreamOptions,
  StoreClosedError,
} from '../eventStore.js';
import {
  ChangeNotifier,
  catchUpSubscription,
  groupSubscription,
  pagedEvents,
  streamInterest,
} from '../shared/subscriptions.js';
import { expectedRevisionConflict, repeatedCommit, type StoredPlace } from '../shared/appendRules.js';
import {
  assertGroupName,
  assertReadFrom,
  assertStreamName,
  matchesFilter,
  maxCountOf,
  type PreparedAppend,
  prepareAppend,
  prepareAppends,
} from '../validation.js';
import { filteredQueries } from './filterSql.js';
import { groupCommit } from './groupCommit.js';
import { limitedStatement } from './limited.js';
import { SQLiteGroup } from './sqliteGroup.js';
import { DamagedEventError, type RawRow, rowToEvent } from './rows.js';

export interface SQLiteEventStoreOptions {
  path: string;
  url?: string;
  /** How long a writer waits for another process's write lock. Default 5 000 ms. */
  busyTimeoutMs?: number;
  /** How often waiting subscribers check for other processes' commits. Default 5 ms. */
  pollIntervalMs?: number;
  /** Refuse a path with no store yet instead of creating one (a reader given a mistyped path). */
  mustExist?: boolean;
  /** `synchronous = FULL`: a commit is fsynced before it returns (see OpenOptions.durable). Default NORMAL. */
  durable?: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    INTEGER PRIMARY KEY,
  id          TEXT    NOT NULL UNIQUE,
  stream      TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream, revision)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  name     TEXT PRIMARY KEY,
  position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS swf_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;
const SCHEMA_VERSION = '1';

const COLUMNS = 'position, id, stream, revision, type, data, metadata, recorded_at';

interface SqliteErrorLike {
  code?: unknown;
  message?: unknown;
}

/**
 * Why the store's folder cannot be written, in words (a read-only file system, no permission), or undefined. SQLite
 * only says "unable to open database file" or "attempt to write a readonly database".
 */
function whyNotWritable(path: string): string | undefined {
  const dir = dirname(path);
  try {
    accessSync(dir, fsConstants.W_OK);
    if (existsSync(path)) accessSync(path, fsConstants.W_OK);
    return undefined;
  } catch (e: unknown) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EROFS') return `the file system holding ${dir} is read-only`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write ${dir}`;
    if (code === 'ENOENT') return `the folder ${dir} does not exist`;
    return undefined;
  }
}

/** Whether the file system holding the store has no space left (an I/O error SQLite reports less precisely). */
function diskFull(path: string): boolean {
  try {
    const s = statfsSync(dirname(path));
    return s.bavail === 0;
  } catch {
    return false;
  }
}

/**
 * An empty file that is not one SQLite is creating right now: SQLite would quietly make a store of it, where the
 * user gave a file that is something else. (Another process opening a new store holds it empty for a moment.)
 */
function emptyFile(path: string): boolean {
  try {
    const s = statSync(path);
    return s.isFile() && s.size === 0 && Date.now() - s.mtimeMs > 5_000;
  } catch {
    return false;
  }
}

/** Translates driver errors at the boundary: nothing above this adapter sees a SqliteError. */
export function translateSqliteError(e: unknown, path: string): unknown {
  if (isDamagedEventError(e) && e.store === undefined) return new DamagedEventError(e.damaged, path);
  if (isSwfError(e)) return e;
  const code = typeof (e as SqliteErrorLike)?.code === 'string' ? ((e as SqliteErrorLike).code as string) : '';
  const msg = e instanceof Error ? e.message : String(e);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreLockedError(`the store ${path} stayed locked by another process past the busy timeout (${msg})`, {
      cause: e,
    });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new StoreCorruptError(`${path} is not a swf-es SQLite database (${msg})`, { cause: e });
  }
  if (code === 'SQLITE_FULL' || (code.startsWith('SQLITE_IOERR') && diskFull(path))) {
    return new StoreUnavailableError(`cannot write the store ${path}: the disk is full (${msg})`, { cause: e });
  }
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_IOERR') ||
    code === 'SQLITE_FULL'
  ) {
    const why = whyNotWritable(path);
    return new StoreUnavailableError(`cannot use the store ${path}: ${why ? `${why} (${msg})` : msg}`, { cause: e });
  }
  return e;
}

/** Thrown out of an append's job when one of its ids is already stored: the repeat rule decides, outside it. */
class IdempotencyProbe extends Error {}

/**
 * `mkdir -p`, one level at a time. (Node's recursive mkdirSync can spin forever on some paths, e.g. under /proc.)
 */
function makeFolder(dir: string): void {
  const missing: string[] = [];
  let d = dir;
  while (!existsSync(d)) {
    missing.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing) mkdirSync(m);
}

export function getSQLiteEventStore(options: SQLiteEventStoreOptions): EventStore {
  const path = options.path === ':memory:' ? ':memory:' : resolve(options.path);
  const url = options.url ?? `sqlite:${options.path}`;
  const fail = (e: unknown): never => {
    throw translateSqliteError(e, path);
  };
  const toEvents = (rows: RawRow[]): StoredEvent[] => {
    try {
      return rows.map((r) => rowToEvent(r));
    } catch (e: unknown) {
      return fail(e);
    }
  };

  if (options.mustExist && path !== ':memory:' && !existsSync(path)) {
    throw new StoreUnavailableError(`there is no store at ${path} (swf run or swf import creates one)`);
  }
  if (path !== ':memory:' && emptyFile(path)) {
    throw new StoreCorruptError(`${path} is an empty file, not a swf-es SQLite store`);
  }
  let db: Database.Database;
  try {
    if (path !== ':memory:') {
      try {
        makeFolder(dirname(path));
      } catch (e: unknown) {
        throw new StoreUnavailableError(
          `cannot create the folder of the store ${path}: ${e instanceof Error ? e.message : String(e)}`,
          {
            cause: e,
          },
        );
      }
    }
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (e: unknown) {
    return fail(e);
  }
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL survives a killed process; FULL also a power cut, for commits that acknowledge something outside.
    db.pragma(options.durable ? 'synchronous = FULL' : 'synchronous = NORMAL');
    // A page cache of 16 MB (the default is 2 MB) holds the indexes' hot pages: the tails of the position, id and
    // (stream, revision) indexes that appends and reads touch. The rest of the file stays in the OS page cache,
    // outside the process; 64 MB cost a long run ~50 MB of resident memory for no measured speed (docs/run.md).
    db.pragma('cache_size = -16384');
    // Fewer, larger checkpoints: the log is written in bursts (group commit). A durable store checkpoints in a
    // thread of its own (checkpointer.ts): its own automatic checkpoint is then only a backstop.
    db.pragma(`wal_autocheckpoint = ${options.durable && path !== ':memory:' ? 100_000 : 10_000}`);
    db.pragma('foreign_keys = ON');
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
    if (tables.length > 0 && !tables.includes('events')) {
      throw new StoreCorruptError(
        `${path} is a SQLite database but not a swf-es store (it has tables ${tables.slice(0, 5).join(', ')}, no events table)`,
      );
    }
    db.exec(SCHEMA);
    db.prepare(`INSERT OR IGNORE INTO swf_meta (key, value) VALUES ('schema_version', ?)`).run(SCHEMA_VERSION);
    SQLiteGroup.createSchema(db);
  } catch (e: unknown) {
    try {
      db.close();
    } catch {
      // already failing; the first error is the one to report
    }
    return fail(e);
  }

  const q = {
    head: db.prepare(`SELECT max(revision) FROM events WHERE stream = ?`).pluck(),
    insert: db.prepare(
      `INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    byId: db.prepare(`SELECT stream, revision, position, type FROM events WHERE id = ?`),
    lastPosition: db.prepare(`SELECT max(position) FROM events`).pluck(),
    allForward: limitedStatement(db, `SELECT ${COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?`),
    allBackward: limitedStatement(
      db,
      `SELECT ${COLUMNS} FROM events WHERE position <= ? ORDER BY position DESC LIMIT ?`,
    ),
    streamForward: limitedStatement(
      db,
      `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`,
    ),
    streamBackward: limitedStatement(
      db,
      `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`,
    ),
    dataVersion: db.prepare(`PRAGMA data_version`).pluck(),
    getCheckpoint: db.prepare(`SELECT position FROM checkpoints WHERE name = ?`).pluck(),
    setCheckpoint: db.prepare(
      `INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position`,
    ),
  };

  const notifier = new ChangeNotifier();
  let poller: NodeJS.Timeout | undefined;
  let lastDataVersion = q.dataVersion.get() as number;
  const pollOnce = (): void => {
    try {
      const v = q.dataVersion.get() as number;
      if (v !== lastDataVersion) {
        lastDataVersion = v;
        notifier.notify();
      }
    } catch {
      // a transient lock or a closing store; the next tick tries again
    }
  };
  notifier.setPollingHooks(
    () => {
      poller ??= setInterval(pollOnce, options.pollIntervalMs ?? 5);
    },
    () => {
      if (poller) clearInterval(poller);
      poller = undefined;
    },
  );
  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw new StoreClosedError(path);
  };

  const storedAt = (id: string): StoredPlace | undefined => {
    const r = q.byId.get(id) as { stream: string; revision: number; position: number; type: string } | undefined;
    return r && { streamName: r.stream, revision: BigInt(r.revision), position: BigInt(r.position), type: r.type };
  };

  const checkpointer =
    options.durable && path !== ':memory:' ? startCheckpointer(path, options.busyTimeoutMs ?? 5000) : undefined;
  /** Events appended by the commits since the checkpointer last heard of them. */
  let appended = 0;
  const commits = groupCommit(db, {
    isClosed: () => closed,
    closedError: () => new StoreClosedError(path),
    translate: (e) => translateSqliteError(e, path),
    committed(touched) {
      // data_version moves only for other connections' commits: if it moved since the poller last looked, another
      // process committed in between, and its change must still wake everyone (not only the streams touched
      // here), or a subscriber waiting on its stream (the DAQ on `swf stop`'s StopRequested) would sleep on.
      let foreign = false;
      try {
        const v = q.dataVersion.get() as number;
        foreign = v !== lastDataVersion;
        lastDataVersion = v;
      } catch {
        // a transient lock: leave lastDataVersion as it is, so the poller still sees the other process's change
      }
      notifier.notify(foreign ? undefined : touched);
      if (checkpointer) {
        checkpointer.written(appended);
        appended = 0;
      }
    },
  });
  const enqueue = <T>(run: () => T): Promise<T> => commits.enqueue(run);

  /** Runs inside a write transaction. Throws IdempotencyProbe when an id is already stored. */
  function appendInTx({ stream, events, expected }: PreparedAppend, now: number): AppendResult {
    const head = q.head.get(stream) as number | null;
    const current = head === null ? -1 : head;
    const conflict = expectedRevisionConflict(stream, expected, current);
    if (conflict) {
      if (q.byId.get(events[0]!.id) !== undefined) throw new IdempotencyProbe();
      throw conflict;
    }
    commits.touch(stream);
    appended += events.length;
    let revision = current;
    let position = 0;
    for (const e of events) {
      revision++;
      try {
        position = q.insert.run(e.id, stream, revision, e.type, e.data, e.metadata, now).lastInsertRowid as number;
      } catch (err: unknown) {
        if (
          (err as SqliteErrorLike)?.code === 'SQLITE_CONSTRAINT_UNIQUE' &&
          String((err as SqliteErrorLike).message).includes('events.id')
        ) {
          throw new IdempotencyProbe();
        }
        throw err;
      }
    }
    return { nextRevision: BigInt(revision), position: BigInt(position) };
  }

  /**
   * A commit's appends and checkpoint, as one job of the group commit: all or nothing (the whole transaction, or the
   * job's own savepoint when the batch runs isolated). Where an id is already stored, nothing is written and the
   * repeat rule gives the first results (or the conflict).
   */
  async function write(batch: PreparedAppend[], checkpoint?: Checkpoint): Promise<AppendResult[]> {
    try {
      return await enqueue(() => {
        const now = Date.now();
        const results = batch.map((b) => appendInTx(b, now));
        if (checkpoint) q.setCheckpoint.run(checkpoint.name, checkpoint.position);
        return results;
      });
    } catch (e: unknown) {
      if (!(e instanceof IdempotencyProbe)) return fail(e);
    }
    const again = repeatedCommit(batch, storedAt);
    // No id stored after all: one id stands in two appends of the commit.
    if (!again) throw new ConcurrencyError('the commit names one event id in two of its appends');
    if (checkpoint) await enqueue(() => q.setCheckpoint.run(checkpoint.name, checkpoint.position));
    return again;
  }

  /**
   * Pages through rows: `first` fetches the first page, `next` the page after a row. `keep` filters rows before
   * their JSON is parsed. Stops after `max` events.
   */
  function readPaged(
    first: (limit: number) => RawRow[],
    next: (last: RawRow, limit: number) => RawRow[],
    max: number,
    keep?: (r: RawRow) => boolean,
    before?: () => void,
    onDamaged?: ReadAllOptions['onDamaged'],
  ): AsyncIterable<StoredEvent> {
    let n = 0;
    let last: RawRow | undefined;
    let started = false;
    let exhausted = false;
    return pagedEvents(() => {
      const out: StoredEvent[] = [];
      try {
        if (!started) before?.();
        while (out.length === 0 && !exhausted && n < max) {
          const limit = keep ? 1000 : Math.min(1000, max - n);
          const page = started ? next(last!, limit) : first(limit);
          started = true;
          if (page.length === 0) {
            exhausted = true;
            break;
          }
          last = page[page.length - 1];
          for (const r of page) {
            if (n >= max) break;
            if (keep && !keep(r)) continue;
            try {
              out.push(rowToEvent(r));
            } catch (e: unknown) {
              if (!(onDamaged && isDamagedEventError(e))) throw e;
              onDamaged(e.damaged);
              continue;
            }
            n++;
          }
          if (page.length < limit) exhausted = true;
        }
      } catch (e: unknown) {
        return fail(e);
      }
      return out;
    });
  }

  const filteredStatement = filteredQueries(db, COLUMNS);

  const groups = new Map<string, SQLiteGroup>();
  const groupFor = (stream: string, group: string, opts: GroupOptions): SQLiteGroup => {
    const key = `${stream}\u0000${group}`;
    let g = groups.get(key);
    if (!g) {
      g = new SQLiteGroup(db, stream, group, opts, (e) => translateSqliteError(e, path), enqueue);
      groups.set(key, g);
    }
    return g;
  };

  const store: EventStore = {
    kind: 'sqlite',
    url,
    capabilities: {
      idempotentWithAnyRevision: true,
      atomicCommit: true,
      uniqueEventIds: true,
      redeliversToAnotherMember: true,
    },

    async appendToStream(stream: string, events: readonly NewEvent[], opts = {}) {
      return (await write([prepareAppend(stream, events, opts.expectedRevision)]))[0]!;
    },

    async commit(appends: readonly StreamAppend[], checkpoint?: Checkpoint): Promise<CommitResult> {
      const batch = prepareAppends(appends);
      if (batch.length === 0) {
        if (checkpoint) await store.checkpoints.set(checkpoint.name, checkpoint.position);
        return { appends: [] };
      }
      return { appends: await write(batch, checkpoint) };
    },

    readStream(stream: string, opts: ReadStreamOptions = {}) {
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      ensureOpen();
      const max = maxCountOf(opts.maxCount);
      const backwards = opts.direction === 'backwards';
      const from = opts.from ?? (backwards ? 'end' : 'start');
      const notFound = (): void => {
        if (q.head.get(stream) === null) throw new StreamNotFoundError(stream);
      };
      return backwards
        ? readPaged(
            (limit) =>
              q.streamBackward.all(
                stream,
                from === 'end' || from === 'start' ? (from === 'start' ? 0 : Number.MAX_SAFE_INTEGER) : Number(from),
                limit,
              ) as RawRow[],
            (last, limit) => q.streamBackward.all(stream, last[3] - 1, limit) as RawRow[],
            max,
            undefined,
            notFound,
          )
        : readPaged(
            (limit) =>
              q.streamForward.all(
                stream,
                from === 'start' ? 0 : from === 'end' ? Number.MAX_SAFE_INTEGER : Number(from),
                limit,
              ) as RawRow[],
            (last, limit) => q.streamForward.all(stream, last[3] + 1, limit) as RawRow[],
            max,
            undefined,
            notFound,
          );
    },

    readAll(opts: ReadAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      ensureOpen();
      const max = maxCountOf(opts.maxCount);
      const backwards = opts.direction === 'backwards';
      const from = opts.from ?? (backwards ? 'end' : 'start');
      const keep = opts.filter ? (r: RawRow) => matchesFilter(opts.filter, r[2], r[4]) : undefined;
      if (backwards) {
        const start = from === 'end' ? Number.MAX_SAFE_INTEGER : from === 'start' ? 0 : Number(from);
        return readPaged(
          (limit) => q.allBackward.all(start, limit) as RawRow[],
          (last, limit) => q.allBackward.all(last[0] - 1, limit) as RawRow[],
          max,
          keep,
          undefined,
          opts.onDamaged,
        );
      }
      const start = from === 'start' ? 0 : from === 'end' ? Number.MAX_SAFE_INTEGER : Number(from);
      if (opts.filter) {
        const filtered = filteredStatement(opts.filter);
        return readPaged(
          (limit) => filtered.all(start - 1, Number.MAX_SAFE_INTEGER, limit) as RawRow[],
          (last, limit) => filtered.all(last[0], Number.MAX_SAFE_INTEGER, limit) as RawRow[],
          max,
          undefined,
          undefined,
          opts.onDamaged,
        );
      }
      return readPaged(
        (limit) => q.allForward.all(start, limit) as RawRow[],
        (last, limit) => q.allForward.all(last[0] + 1, limit) as RawRow[],
        max,
        undefined,
        undefined,
        opts.onDamaged,
      );
    },

    async headPosition() {
      ensureOpen();
      try {
        const p = q.lastPosition.get() as number | null;
        return p === null ? undefined : BigInt(p);
      } catch (e: unknown) {
        return fail(e);
      }
    },

    subscribeToAll(opts: SubscribeToAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      ensureOpen();
      const from = opts.from ?? 'start';
      const start =
        from === 'start' ? 0n : from === 'end' ? BigInt((q.lastPosition.get() as number | null) ?? 0) : from;
      const filter = opts.filter;
      const filtered = filter ? filteredStatement(filter) : undefined!;
      return catchUpSubscription(
        start,
        (cursor, limit) => {
          if (closed) return { events: [], scanned: cursor };
          if (!filter) {
            const rows = q.allForward.all(Number(cursor) + 1, limit) as RawRow[];
            return { events: toEvents(rows), scanned: cursor };
          }
          // SQLite applies the filter; only matching rows come back to be parsed.
          const head = (q.lastPosition.get() as number | null) ?? 0;
          if (head <= Number(cursor)) return { events: [], scanned: cursor };
          const rows = filtered.all(Number(cursor), head, limit) as RawRow[];
          const scanned = rows.length < limit ? BigInt(head) : BigInt(rows[rows.length - 1]![0]);
          return { events: toEvents(rows), scanned };
        },
        notifier,
        (e) => e.position,
        streamInterest(filter),
      );
    },

    subscribeToStream(stream: string, opts: SubscribeToStreamOptions = {}) {
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      ensureOpen();
      const from = opts.from ?? 'start';
      // cursor = the next revision to deliver
      const start =
        from === 'start' ? 0n : from === 'end' ? BigInt(((q.head.get(stream) as number | null) ?? -1) + 1) : from + 1n;
      return catchUpSubscription(
        start,
        (cursor, limit) => {
          if (closed) return { events: [], scanned: cursor };
          const rows = q.streamForward.all(stream, Number(cursor), limit) as RawRow[];
          return { events: toEvents(rows), scanned: cursor };
        },
        notifier,
        (e) => e.revision + 1n,
        (s) => s === stream,
      );
    },

    subscribeToGroup(stream: string, group: string, opts: GroupOptions = {}) {
      assertStreamName(stream);
      assertGroupName(group);
      ensureOpen();
      const backend = groupFor(stream, group, opts);
      // A member named again after its process died takes back what the dead one held (GroupOptions.member).
      if (opts.member !== undefined) backend.release(opts.member);
      return groupSubscription(
        backend,
        opts.member ?? randomUUID(),
        opts.bufferSize ?? 1,
        notifier,
        Date.now,
        (s) => s === stream,
      );
    },

    async listParked(stream: string, group: string): Promise<ParkedEvent[]> {
      assertStreamName(stream);
      assertGroupName(group);
      ensureOpen();
      return groupFor(stream, group, {}).parked();
    },

    async replayParked(stream: string, group: string) {
      assertStreamName(stream);
      assertGroupName(group);
      ensureOpen();
      const n = groupFor(stream, group, {}).replay();
      notifier.notify();
      return n;
    },

    checkpoints: {
      async get(name) {
        ensureOpen();
        const p = q.getCheckpoint.get(name) as number | undefined;
        return p === undefined ? undefined : BigInt(p);
      },
      async set(name, position) {
        await enqueue(() => q.setCheckpoint.run(name, position));
      },
    },

    async close() {
      if (closed) return;
      commits.flush();
      closed = true;
      if (poller) clearInterval(poller);
      poller = undefined;
      notifier.notify();
      await checkpointer?.close();
      db.close();
    },
  };
  return store;
}
