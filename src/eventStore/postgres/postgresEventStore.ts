/**
 * The PostgreSQL store: one log shared by processes on any number of hosts.
 *
 * - Positions are handed out in commit order: every write transaction that appends first locks the single row of
 *   `swf_log_head`, takes the next positions from it and writes the new head back before it commits. A reader
 *   that sees position n therefore sees every position below n (they were committed before the lock passed on),
 *   so "position > cursor" never skips an event; positions are gap-free (a rolled-back append gives its numbers
 *   back) and checked to stay below 2^53. See docs/postgres.md for why this rule and not a sequence.
 * - Per-stream optimistic concurrency is a conditional update of the stream's row in `swf_streams` in the same
 *   statement as the insert, with the unique (stream, revision) index as a backstop.
 * - Group commit: every write of one turn of the event loop (all agents and workers of a process) goes into one
 *   transaction, as on SQLite; one failing write fails alone (the batch is redone with a savepoint per write).
 * - Subscribers poll, and are woken early by LISTEN/NOTIFY on a connection of their own that reconnects by
 *   itself; a lost notification only delays delivery until the next poll.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { ConcurrencyError, StoreUnavailableError, ValidationError } from '../../errors.js';
import {
  type AppendResult,
  type Checkpoint,
  type CommitResult,
  type EventFilter,
  type EventStore,
  ExpectedVersionConflictError,
  type GroupOptions,
  type NewEvent,
  type ParkedEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StreamAppend,
  StreamNotFoundError,
  type SubscribeToAllOptions,
  type SubscribeToStreamOptions,
} from '../eventStore.js';
import { StoreClosedError } from '../eventStore.js';
import {
  asyncCatchUpSubscription,
  ChangeNotifier,
  groupSubscription,
  streamInterest,
} from '../shared/subscriptions.js';
import { repeatedCommit, type StoredPlace } from '../shared/appendRules.js';
import {
  assertGroupName,
  assertReadFrom,
  assertStreamName,
  maxCountOf,
  type PreparedAppend,
  prepareAppend,
  prepareAppends,
} from '../validation.js';
import { isUniqueViolation, pgCode, translatePgError } from './errors.js';
import { type GroupContext, PostgresGroup } from './postgresGroup.js';
import { EVENT_COLUMNS, type EventRow, rowToEvent } from './rows.js';
import { OwnEvents } from './ownEvents.js';
import { ensureSchema, hasStore } from './schema.js';
import { asyncPagedEvents } from './subscriptions.js';

export interface PostgresEventStoreOptions {
  /** `postgres://user:password@host:5432/database` (also `postgresql://`). */
  url: string;
  /** Connections in the pool (writes use one at a time; reads, claims and acks the rest). Default 8. */
  poolSize?: number;
  /** How long a write waits for another writer's lock before StoreLockedError. Default 30 000 ms. */
  busyTimeoutMs?: number;
  /** How often waiting subscribers look for commits whose notification was lost. Default 250 ms. */
  pollIntervalMs?: number;
  /** Refuse a database with no store yet instead of creating one. */
  mustExist?: boolean;
  /** How long to wait for a connection. Default 10 000 ms. */
  connectTimeoutMs?: number;
}

const CHANNEL = 'swf_events';
const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);
/** PostgreSQL's limit on a NOTIFY payload is 8000 bytes; past this the payload names no streams (wakes all). */
const MAX_PAYLOAD = 7000;
const PAGE = 2000;
/** Server settings of every session the adapter opens (see `connectionConfig`). */
export const SESSION_OPTIONS = '-c jit=off';

/** The URL without its password, for messages and `store.url`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

class IdempotencyProbe extends Error {}

/** Starts `fn` now; the returned function gives its result, and starts it again if it failed (a retry). */
function eager<T>(fn: () => Promise<T>): () => Promise<T> {
  let p = fn();
  p.catch(() => undefined);
  return () => {
    const current = p;
    p = current.catch(() => fn());
    p.catch(() => undefined);
    return current;
  };
}

type Batch = PreparedAppend;

/** A write of the group commit: appends (all or none) and a checkpoint, one caller's `commit()` or append. */
type Job = {
  appends: Batch[];
  checkpoint?: Checkpoint;
  resolve: (value: AppendResult[]) => void;
  reject: (error: unknown) => void;
  ok?: boolean;
  value?: unknown;
};

interface WriteState {
  head: bigint;
  touched: Set<string>;
}

/** The conditional update of the stream's row for each kind of expected revision; $1 stream, $2 count, $3 revision. */
const STREAM_STEP: Record<'any' | 'no_stream' | 'stream_exists' | 'exact', string> = {
  any: `INSERT INTO swf_streams (stream, revision) VALUES ($1, $2::int8 - 1)
        ON CONFLICT (stream) DO UPDATE SET revision = swf_streams.revision + $2::int8 RETURNING revision`,
  no_stream: `INSERT INTO swf_streams (stream, revision) VALUES ($1, $2::int8 - 1) ON CONFLICT (stream) DO NOTHING RETURNING revision`,
  stream_exists: `UPDATE swf_streams SET revision = revision + $2::int8 WHERE stream = $1 RETURNING revision`,
  exact: `UPDATE swf_streams SET revision = revision + $2::int8 WHERE stream = $1 AND revision = $3::int8 RETURNING revision`,
};

/**
 * One statement per append: the stream step, then the events, numbered from the log head ($4) and the stream's
 * revision. Every variant names $3 (the exact revision) so that all take the same parameters.
 */
const appendSql = (step: string): string => `
  WITH s AS (${step}),
  ins AS (
    INSERT INTO swf_events (position, id, stream, revision, type, data, metadata)
    SELECT $4::int8 + x.o, x.id, $1, s.revision - $2::int8 + x.o, x.type, x.data::json, x.metadata::json
      FROM s, unnest($5::uuid[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS x(id, type, data, metadata, o)
    RETURNING 1
  )
  SELECT s.revision, (SELECT count(*) FROM ins), $3::int8 AS expected FROM s`;

/** A whole group commit, one statement (the function is in schema.ts); the benchmark's plain side calls it too. */
export const WRITE_SQL = `SELECT out_revision, out_position, out_at FROM swf_write($1::text[], $2::text[], $3::int8[],
  $4::int4[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text)`;

const APPEND_SQL = {
  any: appendSql(STREAM_STEP.any),
  no_stream: appendSql(STREAM_STEP.no_stream),
  stream_exists: appendSql(STREAM_STEP.stream_exists),
  exact: appendSql(STREAM_STEP.exact),
};

export async function getPostgresEventStore(options: PostgresEventStoreOptions): Promise<EventStore> {
  const url = redactUrl(options.url);
  const where = url;
  const fail = (e: unknown): never => {
    throw translatePgError(e, where);
  };
  const busyTimeout = options.busyTimeoutMs ?? 30_000;
  const connectionConfig: pg.ClientConfig = {
    connectionString: options.url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 5_000,
    application_name: 'swf-es',
    lock_timeout: busyTimeout,
    // A host that vanishes mid-transaction (a cut link) must not hold the log head's lock until TCP gives up: the
    // server ends such a session, rolls its transaction back, and the other hosts carry on.
    idle_in_transaction_session_timeout: 10_000,
    // No JIT compilation: the planner's estimates for the log grow with it (the head row's table has no statistics
    // and is taken for 2,200 rows), so past a few thousand events every page read crossed jit_above_cost and spent
    // 15 to 700 ms compiling a query that runs in 1 to 10 ms (measured on PostgreSQL 15; docs/postgres.md).
    options: SESSION_OPTIONS,
  };
  const pool = new pg.Pool({ ...connectionConfig, max: options.poolSize ?? 8, idleTimeoutMillis: 30_000 });
  // A pooled connection that dies while idle (a server restart) is dropped; the next query opens another.
  pool.on('error', () => undefined);

  try {
    const client = await pool.connect();
    try {
      if (options.mustExist && !(await hasStore(client))) {
        throw new StoreUnavailableError(`there is no swf-es store in ${where} (swf run or swf import creates one)`);
      }
      await ensureSchema(client, where);
    } finally {
      client.release();
    }
  } catch (e: unknown) {
    await pool.end().catch(() => undefined);
    return fail(e);
  }

  const instance = randomUUID();
  const notifier = new ChangeNotifier();
  /** What this process committed last, for its own subscribers (ownEvents.ts says why that is safe). */
  const own = new OwnEvents();
  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw new StoreClosedError(where);
  };
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>): void => {
    const q = p.catch(() => undefined).finally(() => background.delete(q));
    background.add(q);
  };

  /** Queries in flight (see `busy`). */
  let inFlight = 0;
  /** The writes waiting for the next group commit, and the one under way. */
  let jobs: Job[] = [];
  let flushing: Promise<void> | undefined;
  /** Whoever awaits `settled()`: told when nothing is in flight any more. */
  let settleWaiters: (() => void)[] = [];
  const isBusy = (): boolean => inFlight > 0 || jobs.length > 0 || flushing !== undefined;
  const checkSettled = (): void => {
    if (settleWaiters.length === 0 || (isBusy() && !closed)) return;
    const waiters = settleWaiters;
    settleWaiters = [];
    for (const w of waiters) w();
  };
  /** Queries on one pool, with errors translated. */
  const on = (p: pg.Pool) => ({
    query: async <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> => {
      inFlight++;
      try {
        return (await p.query<R>(text, values)).rows;
      } catch (e: unknown) {
        return fail(e);
      } finally {
        inFlight--;
        checkSettled();
      }
    },
    queryArrays: async (text: string, values?: unknown[]): Promise<unknown[][]> => {
      inFlight++;
      try {
        return (await p.query<unknown[]>({ text, values, rowMode: 'array' })).rows;
      } catch (e: unknown) {
        return fail(e);
      } finally {
        inFlight--;
        checkSettled();
      }
    },
  });
  const { query, queryArrays } = on(pool);
  // Delivery state (claims, acks, nacks) commits without waiting for the disk: a server crash can lose at most the
  // last few changes, which redelivers an event (at least once, as after a lease expiry) and never loses one, and a
  // claim costs no fsync. Appends and checkpoints keep synchronous commits.
  const groupPool = new pg.Pool({
    ...connectionConfig,
    options: `${SESSION_OPTIONS} -c synchronous_commit=off`,
    max: 8,
    idleTimeoutMillis: 30_000,
  });
  groupPool.on('error', () => undefined);
  const groupOps = on(groupPool);

  // ---- notifications --------------------------------------------------------------------------------

  /** The payload of a NOTIFY: who sent it (so a process ignores its own) and which streams changed. */
  const payloadOf = (streams: Iterable<string>): string => {
    let p = instance;
    for (const s of streams) {
      if (p.length + s.length + 1 > MAX_PAYLOAD) return instance + '*';
      p += ` ${s}`;
    }
    return p;
  };
  const announce = async (stream: string): Promise<void> => {
    await query(`SELECT pg_notify($1, $2)`, [CHANNEL, payloadOf([stream])]);
  };

  let listener: pg.Client | undefined;
  let listening = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconnectDelay = 100;
  const listen = (): void => {
    if (closed || listener) return;
    const client = new pg.Client(connectionConfig);
    listener = client;
    const lost = (): void => {
      if (listener !== client) return;
      listener = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (closed) return;
      // Whatever was committed while we were deaf: the subscribers look again now, and after each poll.
      notifier.notify();
      reconnectTimer = setTimeout(listen, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 5_000);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (msg) => {
      const payload = msg.payload ?? '';
      if (payload.startsWith(instance)) return;
      const parts = payload.split(' ');
      if (parts.length <= 1 || parts[0]!.endsWith('*')) notifier.notify();
      else notifier.notify(new Set(parts.slice(1)));
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANNEL}`))
      .then(() => {
        reconnectDelay = 100;
        notifier.notify();
      })
      .catch(lost);
  };

  // The safety net under LISTEN: while someone waits, look at the log head now and then.
  let poller: NodeJS.Timeout | undefined;
  let lastHead: string | undefined;
  let polling = false;
  const pollOnce = (): void => {
    if (polling || closed) return;
    polling = true;
    pool
      .query<{ position: string }>(`SELECT position FROM swf_log_head`)
      .then((r) => {
        const head = r.rows[0]?.position;
        if (head !== lastHead) {
          lastHead = head;
          notifier.notify();
        }
      })
      .catch(() => undefined)
      .finally(() => {
        polling = false;
      });
  };
  notifier.setPollingHooks(
    () => {
      if (!listening) {
        listening = true;
        listen();
      }
      poller ??= setInterval(pollOnce, options.pollIntervalMs ?? 250);
    },
    () => {
      if (poller) clearInterval(poller);
      poller = undefined;
    },
  );

  // ---- writes: the group commit -----------------------------------------------------------------------

  async function appendInTx(c: pg.PoolClient, w: WriteState, b: Batch): Promise<AppendResult> {
    const n = BigInt(b.events.length);
    if (w.head + n > MAX_POSITION) {
      throw new StoreUnavailableError(`the store ${where} is full: positions would pass 2^53`);
    }
    const kind = typeof b.expected === 'bigint' ? 'exact' : b.expected;
    let r: pg.QueryResult<[string, string]>;
    try {
      r = await c.query<[string, string]>({
        text: APPEND_SQL[kind],
        values: [
          b.stream,
          n.toString(),
          typeof b.expected === 'bigint' ? b.expected.toString() : null,
          w.head.toString(),
          b.events.map((e) => e.id),
          b.events.map((e) => e.type),
          b.events.map((e) => e.data),
          b.events.map((e) => e.metadata),
        ],
        rowMode: 'array',
      });
    } catch (e: unknown) {
      if (isUniqueViolation(e, 'swf_events_id_key')) throw new IdempotencyProbe();
      throw e;
    }
    const row = r.rows[0];
    if (!row) {
      // The stream was not where the append expected it: a repeat of a stored append, or a conflict.
      const seen = await c.query(`SELECT 1 FROM swf_events WHERE id = $1`, [b.events[0]!.id]);
      if (seen.rowCount) throw new IdempotencyProbe();
      const actual = await c.query<[string]>({
        text: `SELECT revision FROM swf_streams WHERE stream = $1`,
        values: [b.stream],
        rowMode: 'array',
      });
      const current = actual.rows[0]?.[0];
      throw new ExpectedVersionConflictError(
        b.stream,
        b.expected,
        current === undefined ? 'no_stream' : BigInt(current),
      );
    }
    w.head += n;
    w.touched.add(b.stream);
    return { nextRevision: BigInt(row[0]), position: w.head };
  }

  const setCheckpointSql = `INSERT INTO swf_checkpoints (name, position) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET position = excluded.position`;

  /** The notification of a commit: the streams it touched; a checkpoint alone names none (it wakes everyone). */
  const payloadFor = (batch: readonly Job[]): string | null => {
    const streams = new Set<string>();
    for (const job of batch) for (const b of job.appends) streams.add(b.stream);
    return streams.size > 0 || batch.some((j) => j.appends.length === 0) ? payloadOf(streams) : null;
  };

  /**
   * The whole batch as one call of `swf_write` (schema.ts): one statement, one round trip, its own transaction.
   * Throws when any write of it failed; nothing of the batch is then stored.
   */
  async function writeAll(c: pg.PoolClient, batch: Job[]): Promise<void> {
    const streams: string[] = [];
    const kinds: string[] = [];
    const expected: (string | null)[] = [];
    const counts: number[] = [];
    const ids: string[] = [];
    const types: string[] = [];
    const datas: string[] = [];
    const metas: string[] = [];
    const cpNames: string[] = [];
    const cpPositions: string[] = [];
    for (const job of batch) {
      for (const b of job.appends) {
        streams.push(b.stream);
        kinds.push(typeof b.expected === 'bigint' ? 'exact' : b.expected);
        expected.push(typeof b.expected === 'bigint' ? b.expected.toString() : null);
        counts.push(b.events.length);
        for (const e of b.events) {
          ids.push(e.id);
          types.push(e.type);
          datas.push(e.data);
          metas.push(e.metadata);
        }
      }
      if (job.checkpoint) {
        cpNames.push(job.checkpoint.name);
        cpPositions.push(job.checkpoint.position.toString());
      }
    }
    const r = await c.query<[string, string, string]>({
      text: WRITE_SQL,
      values: [streams, kinds, expected, counts, ids, types, datas, metas, cpNames, cpPositions, payloadFor(batch)],
      rowMode: 'array',
    });
    let i = 0;
    const committed: { stream: string; events: PreparedAppend['events']; revision: bigint; position: bigint }[] = [];
    for (const job of batch) {
      job.value = job.appends.map((b) => {
        const row = r.rows[i++]!;
        const result = { nextRevision: BigInt(row[0]), position: BigInt(row[1]) };
        committed.push({
          stream: b.stream,
          events: b.events,
          revision: result.nextRevision,
          position: result.position,
        });
        return result;
      });
      job.ok = true;
    }
    // Committed (the statement was its own transaction): this process's subscribers read these from here.
    if (r.rows.length > 0) own.committed(committed, Number(r.rows[0]![2]));
  }

  /** Runs each job in a savepoint of its own in the open transaction: a failing job fails alone. */
  async function runIsolated(c: pg.PoolClient, batch: Job[], w: WriteState): Promise<void> {
    for (const job of batch) {
      const head = w.head;
      await c.query('SAVEPOINT job');
      try {
        const results: AppendResult[] = [];
        for (const b of job.appends) results.push(await appendInTx(c, w, b));
        if (job.checkpoint) await c.query(setCheckpointSql, [job.checkpoint.name, job.checkpoint.position.toString()]);
        job.value = results;
        job.ok = true;
        await c.query('RELEASE SAVEPOINT job');
      } catch (e: unknown) {
        w.head = head;
        await c.query('ROLLBACK TO SAVEPOINT job');
        job.value = e;
        job.ok = false;
      }
    }
  }

  /** The slow path, after the one-statement batch failed: a transaction with a savepoint per job. */
  async function writeIsolated(c: pg.PoolClient, batch: Job[]): Promise<Set<string>> {
    const appends = batch.some((j) => j.appends.length > 0);
    // The log head's row lock is the first thing taken and the last released: writers queue on it, so positions
    // are handed out in commit order and no two writers can deadlock on stream rows.
    const r = (await c.query({
      text: appends ? `BEGIN; SELECT position FROM swf_log_head FOR UPDATE` : 'BEGIN',
      rowMode: 'array',
    })) as unknown as pg.QueryResult<[string]>[] | pg.QueryResult<[string]>;
    const w: WriteState = { head: Array.isArray(r) ? BigInt(r[1]!.rows[0]![0]) : 0n, touched: new Set() };
    const start = w.head;
    await runIsolated(c, batch, w);
    const notify = w.touched.size > 0 || batch.some((j) => j.ok && j.appends.length === 0);
    // The head and the notification go with the commit, in one round trip (all values are ours, not input).
    const tail = [
      w.head !== start ? `UPDATE swf_log_head SET position = ${w.head.toString()}` : '',
      notify ? `SELECT pg_notify('${CHANNEL}', ${pg.escapeLiteral(payloadOf(w.touched))})` : '',
      'COMMIT',
    ].filter((s) => s !== '');
    await c.query(tail.join('; '));
    return w.touched;
  }

  async function flushBatch(batch: Job[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      // A batch of checkpoints alone commits without waiting for the disk, as delivery state does: a server crash
      // can only take a checkpoint back to an earlier one, so the agent decides a few events again and its derived
      // ids make the repeated appends no-ops. Appends (and the checkpoints that go with them) wait for the flush.
      client = await (batch.every((j) => j.appends.length === 0) ? groupPool : pool).connect();
    } catch (e: unknown) {
      const err = translatePgError(e, where);
      for (const job of batch) job.reject(err);
      return;
    }
    let broken: Error | undefined;
    let touched: Set<string>;
    try {
      try {
        await writeAll(client, batch);
        touched = new Set(batch.flatMap((j) => j.appends.map((b) => b.stream)));
      } catch (e: unknown) {
        // A write not where it expected its stream, a repeated event id, a full log: find which, one by one.
        if (!['SWF01', 'SWF02', '23505'].includes(pgCode(e))) throw e;
        for (const job of batch) job.ok = undefined;
        touched = await writeIsolated(client, batch);
      }
    } catch (e: unknown) {
      try {
        await client.query('ROLLBACK');
      } catch (r: unknown) {
        broken = r instanceof Error ? r : new Error(String(r));
      }
      client.release(broken);
      const err = translatePgError(e, where);
      for (const job of batch) job.reject(err);
      return;
    }
    client.release();
    notifier.notify(touched);
    for (const job of batch) {
      if (job.ok) job.resolve(job.value as AppendResult[]);
      else job.reject(job.value instanceof IdempotencyProbe ? job.value : translatePgError(job.value, where));
    }
  }

  const flush = async (): Promise<void> => {
    try {
      while (jobs.length > 0) {
        const batch = jobs;
        jobs = [];
        await flushBatch(batch);
      }
    } finally {
      // Even if a flush broke in a way not foreseen, later writes must not wait for it forever.
      flushing = undefined;
      checkSettled();
    }
  };

  function enqueue(appends: Batch[], checkpoint?: Checkpoint): Promise<AppendResult[]> {
    ensureOpen();
    return new Promise<AppendResult[]>((resolve, reject) => {
      jobs.push({ appends, checkpoint, resolve, reject });
      // One flush at a time: writes that arrive while one is under way go into the next transaction together.
      flushing ??= new Promise<void>((r) => setImmediate(r)).then(flush);
    });
  }

  /** Where the batch's ids are stored (one query for the whole commit), for the repeat rule. */
  async function storedPlaces(batch: Batch[]): Promise<Map<string, StoredPlace>> {
    const rows = await queryArrays(
      `SELECT id, stream, revision, position, type FROM swf_events WHERE id = ANY($1::uuid[])`,
      [batch.flatMap((b) => b.events.map((e) => e.id))],
    );
    return new Map(
      (rows as [string, string, string, string, string][]).map((r) => [
        r[0],
        { streamName: r[1], revision: BigInt(r[2]), position: BigInt(r[3]), type: r[4] },
      ]),
    );
  }

  async function write(batch: Batch[], checkpoint?: Checkpoint): Promise<AppendResult[]> {
    try {
      return await enqueue(batch, checkpoint);
    } catch (e: unknown) {
      if (!(e instanceof IdempotencyProbe)) throw e;
    }
    // Some ids were already stored: a repeat of an earlier append (or a clash). Nothing of this one was written.
    const stored = await storedPlaces(batch);
    const results = repeatedCommit(batch, (id) => stored.get(id));
    // No id stored after all: one id stands in two appends of the commit.
    if (!results) throw new ConcurrencyError('the commit names one event id in two of its appends');
    if (checkpoint) await setCheckpoint(checkpoint.name, checkpoint.position);
    return results;
  }

  const setCheckpoint = (name: string, position: bigint): Promise<unknown> => enqueue([], { name, position });

  // ---- reads ------------------------------------------------------------------------------------------

  const readRows = async (text: string, values: unknown[]): Promise<EventRow[]> =>
    (await queryArrays(text, values)) as EventRow[];

  /** `AND <filter>` with the prefixes bound as parameters from `$first` on. */
  function filterSql(filter: EventFilter | undefined, first: number): { sql: string; params: string[] } {
    const params: string[] = [];
    const parts: string[] = [];
    const any = (column: string, prefixes: readonly string[] | undefined): void => {
      if (!prefixes || prefixes.length === 0) return;
      const terms = prefixes.map((p) => {
        params.push(p);
        return `starts_with(${column}, $${first + params.length - 1})`;
      });
      parts.push(`(${terms.join(' OR ')})`);
    };
    any('stream', filter?.streamPrefix);
    any('type', filter?.eventTypePrefix);
    return { sql: parts.length > 0 ? ` AND ${parts.join(' AND ')}` : '', params };
  }

  /** The filter of `filterSql`, applied to an event in memory (the same `starts_with` rules). */
  function keepOf(filter: EventFilter | undefined): ((stream: string, type: string) => boolean) | undefined {
    const streams = filter?.streamPrefix?.length ? filter.streamPrefix : undefined;
    const types = filter?.eventTypePrefix?.length ? filter.eventTypePrefix : undefined;
    if (!streams && !types) return undefined;
    return (stream, type) =>
      (!streams || streams.some((p) => stream.startsWith(p))) && (!types || types.some((p) => type.startsWith(p)));
  }

  const headNow = async (): Promise<bigint> => {
    const rows = await queryArrays(`SELECT position FROM swf_log_head`);
    return BigInt((rows[0]?.[0] as string | undefined) ?? '0');
  };

  const groups = new Map<string, PostgresGroup>();
  const groupContext: GroupContext = { ...groupOps, announce, track };
  const groupFor = (stream: string, group: string, opts: GroupOptions): PostgresGroup => {
    const key = `${stream}\u0000${group}`;
    let g = groups.get(key);
    if (!g) {
      g = new PostgresGroup(groupContext, stream, group, opts);
      groups.set(key, g);
    }
    return g;
  };

  const store: EventStore = {
    kind: 'postgres',
    url,
    capabilities: {
      idempotentWithAnyRevision: true,
      atomicCommit: true,
      uniqueEventIds: true,
      // An expired lease puts the event back as pending for whichever member claims next (SKIP LOCKED).
      redeliversToAnotherMember: true,
    },

    async appendToStream(stream: string, events: readonly NewEvent[], opts = {}) {
      return (await write([prepareAppend(stream, events, opts.expectedRevision)]))[0]!;
    },

    async commit(appends: readonly StreamAppend[], checkpoint?: Checkpoint): Promise<CommitResult> {
      const batch = prepareAppends(appends);
      if (batch.length === 0) {
        if (checkpoint) await setCheckpoint(checkpoint.name, checkpoint.position);
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
      // Backwards from 'start' is revision 0 alone, as on SQLite; forwards from 'end' is nothing.
      let next: bigint | undefined = from === 'start' ? 0n : from === 'end' ? MAX_POSITION : from;
      let n = 0;
      let checked = false;
      // A stream exists when it has events: the existence check costs a round trip only when the first page is empty.
      const mustExist = async (): Promise<void> => {
        checked = true;
        const s = await queryArrays(`SELECT 1 FROM swf_streams WHERE stream = $1`, [stream]);
        if (s.length === 0) throw new StreamNotFoundError(stream);
      };
      return asyncPagedEvents(async () => {
        const limit = Math.min(PAGE, max - n);
        if (limit <= 0 || next === undefined || next < 0n) {
          if (!checked) await mustExist();
          return { events: [], last: true };
        }
        const rows = await readRows(
          `SELECT ${EVENT_COLUMNS} FROM swf_events WHERE stream = $1 AND revision ${backwards ? '<=' : '>='} $2
            ORDER BY revision ${backwards ? 'DESC' : ''} LIMIT $3`,
          [stream, next.toString(), limit],
        );
        if (!checked && rows.length === 0) await mustExist();
        checked = true;
        const events = rows.map(rowToEvent);
        n += events.length;
        const lastEvent = events[events.length - 1];
        next = lastEvent ? (backwards ? lastEvent.revision - 1n : lastEvent.revision + 1n) : undefined;
        return { events, last: events.length < limit || n >= max };
      });
    },

    readAll(opts: ReadAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      ensureOpen();
      const max = maxCountOf(opts.maxCount);
      const backwards = opts.direction === 'backwards';
      const from = opts.from ?? (backwards ? 'end' : 'start');
      const { sql: filter, params } = filterSql(opts.filter, 3);
      let next =
        from === 'start'
          ? backwards
            ? -1n
            : 0n
          : from === 'end'
            ? backwards
              ? MAX_POSITION
              : MAX_POSITION + 1n
            : from;
      let n = 0;
      const text = `SELECT ${EVENT_COLUMNS} FROM swf_events WHERE position ${backwards ? '<=' : '>='} $1${filter}
        ORDER BY position ${backwards ? 'DESC' : ''} LIMIT $2`;
      return asyncPagedEvents(async () => {
        const limit = Math.min(PAGE, max - n);
        if (limit <= 0 || next < 0n) return { events: [], last: true };
        const rows = await readRows(text, [next.toString(), limit, ...params]);
        const events = rows.map(rowToEvent);
        n += events.length;
        const lastEvent = events[events.length - 1];
        if (lastEvent) next = backwards ? lastEvent.position - 1n : lastEvent.position + 1n;
        return { events, last: events.length < limit || n >= max };
      });
    },

    async headPosition() {
      ensureOpen();
      const head = await headNow();
      return head === 0n ? undefined : head;
    },

    subscribeToAll(opts: SubscribeToAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      ensureOpen();
      const from = opts.from ?? 'start';
      const filter = opts.filter;
      const { sql, params } = filterSql(filter, 3);
      const keep = keepOf(filter);
      // The head and the page in one statement (one snapshot, one round trip): the head bounds the scan, so rows
      // the filter dropped are passed over for good. No event after the cursor: one row of the head and nulls.
      const text = `SELECT h.position, e.* FROM swf_log_head h LEFT JOIN LATERAL (
          SELECT ${EVENT_COLUMNS} FROM swf_events WHERE position > $1 AND position <= h.position${sql}
           ORDER BY position LIMIT $2) e ON true`;
      // 'end' is the head when subscribing, not when first iterated: ask now.
      return asyncCatchUpSubscription(
        eager(async () => (from === 'end' ? headNow() : from === 'start' ? 0n : from)),
        async (cursor, limit) => {
          if (closed) return { events: [], scanned: cursor };
          // What this process committed right after the cursor, from the commit's result (never "nothing new").
          const local = own.readAll(cursor, limit, keep);
          if (local) return local;
          const rows = (await queryArrays(text, [cursor.toString(), limit, ...params])) as [string, ...EventRow][];
          const head = BigInt(rows[0]?.[0] ?? '0');
          if (rows.length === 0 || rows[0]![1] === null) return { events: [], scanned: head > cursor ? head : cursor };
          const events = rows.map((r) => rowToEvent(r.slice(1) as unknown as EventRow));
          const scanned = rows.length < limit ? head : events[events.length - 1]!.position;
          return { events, scanned };
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
      return asyncCatchUpSubscription(
        eager(async () => {
          if (from === 'start') return 0n;
          if (typeof from === 'bigint') return from + 1n;
          const rows = await queryArrays(`SELECT revision FROM swf_streams WHERE stream = $1`, [stream]);
          return rows[0] ? BigInt(rows[0][0] as string) + 1n : 0n;
        }),
        async (cursor, limit) => {
          if (closed) return { events: [], scanned: cursor };
          const local = own.readStream(stream, cursor, limit);
          if (local) return { events: local, scanned: cursor };
          const rows = await readRows(
            `SELECT ${EVENT_COLUMNS} FROM swf_events WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3`,
            [stream, cursor.toString(), limit],
          );
          return { events: rows.map(rowToEvent), scanned: cursor };
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
      return groupSubscription(
        groupFor(stream, group, opts),
        randomUUID(),
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
      const n = await groupFor(stream, group, {}).replay();
      notifier.notify();
      return n;
    },

    busy: isBusy,

    settled() {
      if (!isBusy() || closed) return Promise.resolve();
      return new Promise<void>((resolve) => settleWaiters.push(resolve));
    },

    checkpoints: {
      async get(name) {
        ensureOpen();
        if (typeof name !== 'string' || name.length === 0)
          throw new ValidationError('checkpoint name is empty', { field: 'name' });
        const rows = await queryArrays(`SELECT position FROM swf_checkpoints WHERE name = $1`, [name]);
        return rows[0] ? BigInt(rows[0][0] as string) : undefined;
      },
      async set(name, position) {
        await setCheckpoint(name, position);
      },
    },

    async close() {
      if (closed) return;
      while (flushing) await flushing;
      closed = true;
      own.clear();
      checkSettled();
      if (poller) clearInterval(poller);
      poller = undefined;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      notifier.notify();
      const l = listener;
      listener = undefined;
      if (l) await l.end().catch(() => undefined);
      await Promise.all([...background]);
      await Promise.all([pool.end().catch(() => undefined), groupPool.end().catch(() => undefined)]);
    },
  };
  return store;
}
