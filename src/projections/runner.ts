/**
 * The projection runner: reads the log once and feeds every projection, a batch at a time, each batch in one
 * IMMEDIATE transaction that also moves each projection's checkpoint. So an event is applied exactly once, even
 * across crashes and with several processes (`swf monitor`, `swf mcp`) projecting into the same file: whoever
 * commits a batch first wins, the others skip what the stored checkpoint already covers.
 *
 * Before a batch is applied the runner checks the stored checkpoints against what it believes: if they moved
 * (another process applied events, or rebuilt), the projections drop their in-memory state and the rows are the
 * truth again; if they moved back behind the batch (a rebuild elsewhere), the batch is not applied and reading
 * restarts from the stored checkpoint.
 */
import type { Logger } from 'pino';
import type { EventStore, StoredEvent, Subscription } from '../eventStore/eventStore.js';
import { describeError } from '../errors.js';
import type { ViewsDb } from './db.js';
import { type Fold, ProjectionFold } from './fold.js';
import { agentsProjection, logsProjection, messagesProjection } from './otherProjections.js';
import { projectEvent } from './projection.js';
import { testbedProjection } from './testbedRecords.js';
import {
  INDEX_DDL,
  indexNameOf,
  META_DDL,
  PROJECTION_NAMES,
  PROJECTION_TABLES,
  type ProjectionName,
  TABLE_DDL,
  VIEWS_VERSION,
} from './schema.js';
import { workflowProjection } from './workflowProjection.js';
import { Pipeline } from './writer.js';

export interface ProjectorOptions {
  /**
   * Events per transaction while catching up. Default 1 000: a batch's events stay alive until it commits, and
   * bigger batches make the garbage collector copy and promote them (10 000 folded a 1,000-STF log ~12 % slower).
   */
  batchSize?: number;
  /**
   * A fold from empty views of a log longer than this many events is a bulk fold: the secondary indexes are built
   * at the end, and the writes go to the writer thread. Default 20 000.
   */
  bulkEvents?: number;
  /** Whether a bulk fold writes on a writer thread (default true; never for `:memory:`). */
  writerThread?: boolean;
  /**
   * How many finished slices the bulk fold with the writer thread remembers by name (to know, without reading,
   * which slices have a row) before it goes on without the thread. Default 500 000 (some 50 MB).
   */
  bulkSlices?: number;
  /** Values of one kind each projection keeps in memory while it follows the log (default 20 000; see `FoldMode`). */
  maxCached?: number;
  logger?: Pick<Logger, 'warn' | 'info' | 'debug' | 'error'>;
}

export interface CatchUpResult {
  /** Events read and applied by this call. */
  events: number;
  /** The lowest checkpoint afterwards. */
  position: bigint;
  ms: number;
}

interface CheckpointRow {
  name: string;
  position: number;
  event_id: string | null;
  version: number;
}

/**
 * While events keep coming, the live fold commits at most once per this many milliseconds: one transaction (and one
 * WAL write of the pages it dirtied) for the events of several of the store's commits, instead of one for each. An
 * event after a quiet spell is applied at once. Readers do not wait for it: `catchUp`, which every reader awaits,
 * applies whatever the follow has not applied yet. Under `bench:monitor-writes` (8 clients writing logs), 10 ms
 * cut the monitor's CPU per write by ~15 % against a commit per store commit, 30 ms by another ~8 %.
 */
export const FOLLOW_BATCH_MS = 25;

const quiet = { warn: () => {}, info: () => {}, debug: () => {}, error: () => {} };

export class Projector {
  private projections: Fold[] = [];
  /** What this process believes each checkpoint is; undefined = re-read from the database. */
  private known = new Map<ProjectionName, bigint>();
  private readonly batchSize: number;
  private readonly bulkEvents: bigint;
  private readonly writerThread: boolean;
  private readonly bulkSlices: number | undefined;
  private readonly maxCached: number | undefined;
  private readonly logger: NonNullable<ProjectorOptions['logger']>;
  private queue: Promise<unknown> = Promise.resolve();
  private following = false;
  private subscription: Subscription | undefined;
  private followDone: Promise<void> | undefined;
  private pending: StoredEvent[] = [];
  private pendingAfter = 0n;
  private flushScheduled = false;
  /** The live fold's next commit, when it waits for `FOLLOW_BATCH_MS` to pass since the one before. */
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the live fold last committed (`performance.now()`). */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private restartFollow = false;
  private readonly listeners = new Set<(position: bigint) => void>();

  private constructor(
    readonly store: EventStore,
    readonly db: ViewsDb,
    options: ProjectorOptions,
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 1_000);
    this.bulkEvents = BigInt(Math.max(0, Math.floor(options.bulkEvents ?? 20_000)));
    this.writerThread = options.writerThread ?? true;
    this.bulkSlices = options.bulkSlices;
    this.maxCached = options.maxCached;
    this.logger = options.logger ?? quiet;
  }

  /** After the tables exist: the projections prepare their statements. */
  private createProjections(): void {
    this.projections = Projector.projectionsOn(this.db, false, this.maxCached);
  }

  /** The values each projection holds in memory, by `<projection>.<kind>` (docs/run.md "Memory"). */
  cached(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.projections) for (const [kind, n] of Object.entries(p.cached())) out[`${p.name}.${kind}`] = n;
    return out;
  }

  /** Every read model, in the order they are applied. */
  private static projectionsOn(db: ViewsDb, bulk: boolean, maxCached?: number): Fold[] {
    const mode = { bulk, ...(maxCached !== undefined ? { maxCached } : {}) };
    return [
      new ProjectionFold(workflowProjection, db, mode),
      new ProjectionFold(messagesProjection, db, mode),
      new ProjectionFold(agentsProjection, db, mode),
      new ProjectionFold(logsProjection, db, mode),
      new ProjectionFold(testbedProjection, db, mode),
    ];
  }

  /**
   * Opens the projections on `db` for `store`: creates the tables, and rebuilds from scratch when the views are of
   * another version or of another log (the event at a checkpoint is not the one recorded there).
   */
  static async open(store: EventStore, db: ViewsDb, options: ProjectorOptions = {}): Promise<Projector> {
    db.exec(META_DDL);
    const p = new Projector(store, db, options);
    const reason = await p.staleReason();
    if (reason) {
      if (reason === 'new views database') p.logger.info({ views: db.path }, 'new views database');
      else p.logger.warn({ views: db.path, reason }, 'rebuilding the views');
      p.resetTables();
    } else {
      db.immediate(() => {
        for (const name of PROJECTION_NAMES) db.exec(TABLE_DDL[name]);
        p.createIndexes();
        p.ensureCheckpointRows();
      });
    }
    p.createProjections();
    return p;
  }

  /** The lowest checkpoint (every projection has applied the log up to here). */
  get position(): bigint {
    const rows = this.readCheckpoints();
    let min: bigint | undefined;
    for (const r of rows.values()) if (min === undefined || r < min) min = r;
    return min ?? 0n;
  }

  /** Called after each committed batch with the new lowest checkpoint (the monitor's live feed of changes). */
  onApplied(listener: (position: bigint) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Applies the log up to its current end (or `until`), then resolves. Calls are serialized: a caller waits for
   * the one before it, which usually leaves it nothing to do.
   */
  catchUp(options: { until?: bigint } = {}): Promise<CatchUpResult> {
    const run = this.queue.then(() => this.pull(options.until));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Drops every read model and folds the whole log again. */
  rebuild(): Promise<CatchUpResult> {
    const run = this.queue.then(() => {
      this.resetTables();
      return this.pull(undefined);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Follows the log live (a catch-up subscription) until `stop()`. */
  follow(): void {
    if (this.following) return;
    this.following = true;
    this.followDone = this.followLoop();
  }

  async stop(): Promise<void> {
    this.following = false;
    await this.subscription?.unsubscribe();
    await this.followDone;
    // The loop has applied what it held; a commit still waiting for its turn has nothing left to do.
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushScheduled = false;
    await this.queue;
  }

  // ---- internals -----------------------------------------------------------------------------------

  private async staleReason(): Promise<string | undefined> {
    const version = this.db.prepare<{ value: string }>(`SELECT value FROM views_meta WHERE key = 'version'`).get();
    if (version === undefined) {
      const any = this.db.prepare(`SELECT 1 FROM projection_checkpoints LIMIT 1`).get();
      return any === undefined ? 'new views database' : 'views of an unknown version';
    }
    if (version.value !== String(VIEWS_VERSION))
      return `views version ${version.value}, this code's is ${VIEWS_VERSION}`;
    const rows = this.db
      .prepare<CheckpointRow>(`SELECT name, position, event_id, version FROM projection_checkpoints`)
      .all();
    const names = new Set(rows.map((r) => r.name));
    if (PROJECTION_NAMES.some((n) => !names.has(n))) return 'a projection has no checkpoint';
    for (const r of rows) {
      if (r.position === 0) continue;
      let found: StoredEvent | undefined;
      for await (const e of this.store.readAll({ from: BigInt(r.position), maxCount: 1 })) found = e;
      if (!found || found.position !== BigInt(r.position) || found.id !== r.event_id) {
        return `the log has ${found ? `event ${found.id}` : 'no event'} at position ${r.position}, the views recorded ${r.event_id ?? 'none'}: they were built from another log`;
      }
    }
    return undefined;
  }

  private ensureCheckpointRows(): void {
    const insert = this.db.prepare(
      `INSERT INTO projection_checkpoints (name, position, event_id, version) VALUES (?, 0, NULL, ?) ON CONFLICT (name) DO NOTHING`,
    );
    for (const name of PROJECTION_NAMES) insert.run([name, VIEWS_VERSION]);
  }

  private resetTables(): void {
    this.db.immediate(() => {
      for (const name of PROJECTION_NAMES) {
        for (const table of PROJECTION_TABLES[name]) this.db.exec(`DROP TABLE IF EXISTS ${table}`);
        this.db.exec(TABLE_DDL[name]);
      }
      this.createIndexes();
      this.db.exec(`DELETE FROM projection_checkpoints`);
      this.ensureCheckpointRows();
      this.db
        .prepare(
          `INSERT INTO views_meta (key, value) VALUES ('version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        )
        .run([String(VIEWS_VERSION)]);
    });
    this.forget();
  }

  private createIndexes(): void {
    for (const name of PROJECTION_NAMES) for (const ddl of INDEX_DDL[name]) this.db.exec(ddl);
  }

  private dropIndexes(): void {
    for (const name of PROJECTION_NAMES) {
      for (const ddl of INDEX_DDL[name]) this.db.exec(`DROP INDEX IF EXISTS ${indexNameOf(ddl)}`);
    }
  }

  private forget(): void {
    for (const p of this.projections) p.reset();
    this.known.clear();
  }

  private readCheckpoints(): Map<ProjectionName, bigint> {
    const rows = this.db.prepare<CheckpointRow>(`SELECT name, position FROM projection_checkpoints`).all();
    const out = new Map<ProjectionName, bigint>();
    for (const r of rows) out.set(r.name as ProjectionName, BigInt(r.position));
    return out;
  }

  private minKnown(): bigint {
    const stored = this.readCheckpoints();
    let min: bigint | undefined;
    for (const name of PROJECTION_NAMES) {
      const v = stored.get(name) ?? 0n;
      if (min === undefined || v < min) min = v;
    }
    return min ?? 0n;
  }

  private async pull(until: bigint | undefined): Promise<CatchUpResult> {
    const t0 = performance.now();
    const head = (await this.store.headPosition()) ?? 0n;
    const target = until !== undefined && until < head ? until : head;
    let events = 0;
    const bulk = this.minKnown() === 0n && target > this.bulkEvents;
    const threaded = bulk && this.writerThread && this.db.path !== ':memory:';
    if (bulk) {
      // Without the writer thread the indexes are built at the end (a sorted build is several times cheaper); with
      // it, the thread keeps them as it goes, which it has the time for, and the end comes sooner.
      if (!threaded) this.db.immediate(() => this.dropIndexes());
      // One checkpoint at the end instead of one every 1000 pages: the WAL is written once, copied once.
      this.db.exec('PRAGMA wal_autocheckpoint = 0');
    }
    try {
      // The writer thread builds the indexes and checkpoints itself; after a conflict the loop below goes on.
      if (threaded) events += await this.pullPipelined(target);
      events += await this.pullBatches(target);
    } finally {
      if (bulk) {
        this.db.immediate(() => this.createIndexes());
        this.db.exec('PRAGMA wal_autocheckpoint = 1000');
        this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      }
    }
    return { events, position: this.minKnown(), ms: performance.now() - t0 };
  }

  /** The next batch of the log: up to `batchSize` events after position `after`, none past `target`. */
  private async readBatch(after: bigint, target: bigint): Promise<StoredEvent[]> {
    const batch: StoredEvent[] = [];
    for await (const e of this.store.readAll({ from: after === 0n ? 'start' : after + 1n, maxCount: this.batchSize })) {
      if (e.position > target) break;
      batch.push(e);
    }
    return batch;
  }

  private async pullBatches(target: bigint): Promise<number> {
    let events = 0;
    for (;;) {
      const after = this.minKnown();
      if (after >= target) break;
      const batch = await this.readBatch(after, target);
      if (batch.length === 0) break;
      const r = this.applyBatch(batch, after);
      events += r.applied;
      // Nothing moved (no projection took the batch): stop rather than read the same batch forever.
      if (!r.restart && this.minKnown() <= after) break;
    }
    return events;
  }

  /**
   * The bulk fold with the writer thread: reads and folds a batch while the thread commits the ones before. The
   * views were empty (every checkpoint 0); each batch expects every checkpoint where the one before left it, so
   * another process writing meanwhile is a conflict: the thread stops, and `pullBatches` goes on from the stored
   * checkpoints. Returns the events committed.
   */
  private async pullPipelined(target: bigint): Promise<number> {
    const pipeline = new Pipeline(this.db, {
      // every checkpoint moves together in a bulk fold
      onCommitted: (position) => {
        for (const l of this.listeners) l(position);
      },
    });
    const projections = Projector.projectionsOn(pipeline.db, true);
    const maxEvicted = this.bulkSlices ?? 500_000;
    let after = 0n;
    let finishMs = 0;
    try {
      for (;;) {
        if (after >= target) break;
        const batch = await this.readBatch(after, target);
        const last = batch[batch.length - 1];
        if (!last) break;
        const prepared = batch.map(projectEvent);
        for (const p of projections) p.prefetch(prepared);
        for (const e of prepared) for (const p of projections) p.apply(e);
        for (const p of projections) p.flush();
        const position = Number(last.position);
        const outcome = await pipeline.commit(
          PROJECTION_NAMES.map((name) => [name, Number(after)]),
          PROJECTION_NAMES.map((name) => [name, position, last.id]),
          last.position,
          batch.length,
        );
        if (outcome === 'conflict') break;
        after = last.position;
        if (projections.reduce((n, p) => n + p.evicted, 0) > maxEvicted) {
          this.logger.info(
            { views: this.db.path, position: Number(after) },
            'the bulk fold is full; going on without the writer',
          );
          break;
        }
      }
      if ((await pipeline.drain()) === 'conflict') {
        this.logger.info({ views: this.db.path }, 'another process writes these views; going on without the writer');
        await pipeline.close();
      } else {
        const t = performance.now();
        await pipeline.finish(PROJECTION_NAMES.flatMap((name) => INDEX_DDL[name]));
        finishMs = performance.now() - t;
      }
    } catch (e: unknown) {
      await pipeline.close();
      this.forget();
      this.logger.error({ err: describeError(e), after: Number(after) }, 'projection batch failed');
      throw e;
    }
    // The rows are the truth now: the main thread's projections start from them.
    this.forget();
    this.logger.debug(
      { events: pipeline.committedEvents, waitedMs: Math.round(pipeline.waitedMs), finishMs: Math.round(finishMs) },
      'bulk fold with the writer thread',
    );
    return pipeline.committedEvents;
  }

  /**
   * Applies `events` (read after position `after`, in log order, with nothing left out) in one transaction.
   * Returns how many were applied, or `restart` when the stored checkpoints are behind `after`.
   */
  private applyBatch(events: readonly StoredEvent[], after: bigint): { applied: number; restart: boolean } {
    const last = events[events.length - 1];
    if (!last) return { applied: 0, restart: false };
    const prepared = events.map(projectEvent);
    let applied = 0;
    let restart = false;
    const update = this.db.prepare(`UPDATE projection_checkpoints SET position = ?, event_id = ? WHERE name = ?`);
    try {
      this.db.immediate(() => {
        const stored = this.readCheckpoints();
        for (const p of this.projections) {
          const s = stored.get(p.name) ?? 0n;
          if (this.known.get(p.name) !== s) {
            p.reset();
            this.known.set(p.name, s);
          }
          if (s < after) restart = true;
        }
        if (restart) return;
        for (const p of this.projections) p.prefetch(prepared);
        for (const e of prepared) {
          let used = false;
          for (const p of this.projections) {
            if (e.position > (this.known.get(p.name) ?? 0n)) {
              p.apply(e);
              used = true;
            }
          }
          if (used) applied++;
        }
        for (const p of this.projections) {
          if (last.position > (this.known.get(p.name) ?? 0n)) {
            p.flush();
            update.run([Number(last.position), last.id, p.name]);
          }
        }
      });
    } catch (e: unknown) {
      this.forget();
      this.logger.error({ err: describeError(e), after: Number(after) }, 'projection batch failed');
      throw e;
    }
    if (!restart) {
      for (const p of this.projections) {
        if (last.position > (this.known.get(p.name) ?? 0n)) this.known.set(p.name, last.position);
      }
      const position = this.minKnown();
      for (const l of this.listeners) l(position);
    }
    return { applied, restart };
  }

  private flushPending(): void {
    this.flushScheduled = false;
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const batch = this.pending;
    if (batch.length === 0) return;
    this.lastFlushAt = performance.now();
    this.pending = [];
    const after = this.pendingAfter;
    this.pendingAfter = batch[batch.length - 1]!.position;
    try {
      const r = this.applyBatch(batch, after);
      if (r.restart) this.restartFollow = true;
    } catch {
      this.restartFollow = true;
    }
    if (this.restartFollow) void this.subscription?.unsubscribe();
  }

  private async followLoop(): Promise<void> {
    while (this.following) {
      // Catch up first (big batches), then subscribe after what is applied.
      try {
        await this.catchUp();
      } catch (e: unknown) {
        this.logger.error({ err: describeError(e) }, 'catching up failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const from = this.minKnown();
      this.restartFollow = false;
      this.pending = [];
      this.pendingAfter = from;
      const sub = this.store.subscribeToAll({ from: from === 0n ? 'start' : from });
      this.subscription = sub;
      try {
        for await (const e of sub) {
          if (!this.following || this.restartFollow) break;
          this.pending.push(e);
          if (this.pending.length >= this.batchSize) this.flushPending();
          else if (!this.flushScheduled) {
            this.flushScheduled = true;
            const wait = this.lastFlushAt + FOLLOW_BATCH_MS - performance.now();
            if (wait <= 0) setImmediate(() => this.flushPending());
            else this.flushTimer = setTimeout(() => this.flushPending(), wait);
          }
        }
      } catch (e: unknown) {
        if (this.following) this.logger.warn({ err: describeError(e) }, 'the live subscription failed; resubscribing');
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await sub.unsubscribe();
      }
      if (this.restartFollow) this.pending = [];
      else if (this.pending.length > 0) this.flushPending();
    }
  }
}
