/**
 * Pipelined writes for a catch-up from empty views: the main thread reads the log and folds batch N+1 while the
 * writer thread (`startWriterThread`, its own connection) commits batch N. On two cores this hides most of
 * SQLite's cost.
 *
 * The projections are handed `pipeline.db`, a `ViewsDb` whose statements record their writes (as flat tuples of
 * primitives) instead of running them; `commit` sends a batch's writes, with the checkpoints it expects to find and
 * the ones it moves, to be applied in one IMMEDIATE transaction. At most `maxInFlight` batches are unanswered
 * (backpressure). A read waits until every batch sent is committed, so the fold sees its own writes (the bulk fold
 * keeps its state in memory and seldom reads). The results of recorded writes (`changes`, `lastInsertRowid`) are
 * not known: a projection folding in bulk must not ask for them.
 *
 * A batch that finds other checkpoints than it expects (another process wrote) is a conflict: nothing of it is
 * written, later batches are skipped, and the runner goes on without the thread. A batch that fails is rolled back,
 * later ones are skipped, and `commit` (or `finish`) throws the error, translated like any views error.
 */
import type { Worker } from 'node:worker_threads';
import {
  type SqlParams,
  type SqlValue,
  type Statement,
  startWriterThread,
  translateViewsError,
  type ViewsDb,
  type WriterReply,
  type WriterThread,
} from './db.js';

export interface PipelineOptions {
  /** Batches sent and not yet answered before `commit` waits. Default 8. */
  maxInFlight?: number;
  /** Called on the main thread after each batch is committed, with the batch's last position. */
  onCommitted?: (position: bigint, events: number) => void;
}

/** What a recorded write returns: asking for its result is a bug of the bulk fold. */
const UNKNOWN_RESULT: { changes: number; lastInsertRowid: number } = Object.freeze({
  get changes(): number {
    throw new Error('the result of a pipelined write is not known');
  },
  get lastInsertRowid(): number {
    throw new Error('the result of a pipelined write is not known');
  },
});

/** How long a read waits for the writer thread to answer before giving up. */
const READ_WAIT_MS = 120_000;

export class Pipeline {
  /** The views database as the bulk fold sees it: writes are recorded, reads wait for the writes sent. */
  readonly db: ViewsDb;
  private readonly thread: WriterThread;
  private readonly worker: Worker;
  private readonly maxInFlight: number;
  private readonly onCommitted: NonNullable<PipelineOptions['onCommitted']>;
  private readonly statementIds = new Map<string, number>();
  private readonly newStatements: string[] = [];
  /**
   * The batch being recorded: `ops[0, opsLength)`. The array keeps its size from batch to batch (emptying it would
   * give its memory back, and the next batch would grow it again through a chain of copies); what is sent is a copy
   * of the recorded part, and the slots are cleared after it so they keep no strings alive.
   */
  private readonly ops: (SqlValue | undefined)[] = [];
  private opsLength = 0;
  /** Each statement's last recorded parameters (see `WriterBatch.ops`: a repeated string is sent as undefined). */
  private readonly lastParams: SqlValue[][] = [];
  private posted = 0;
  private answered = 0;
  private readonly inFlight: { position: bigint; events: number }[] = [];
  /** Events in the batches committed so far. */
  committedEvents = 0;
  /** How long the main thread waited for the writer thread (backpressure, reads, the end). */
  waitedMs = 0;
  private conflict = false;
  private failure: Error | undefined;
  private finished = false;
  private exited = false;
  private readonly exit: Promise<void>;
  private wake: (() => void) | undefined;

  constructor(
    private readonly real: ViewsDb,
    options: PipelineOptions = {},
  ) {
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 8);
    this.onCommitted = options.onCommitted ?? (() => {});
    this.thread = startWriterThread(real.path);
    this.worker = this.thread.worker;
    this.worker.on('message', (reply: WriterReply) => this.onReply(reply));
    this.worker.on('error', (e: unknown) => {
      this.failure ??= new Error(`the views writer thread failed: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
      this.poke();
    });
    this.exit = new Promise((resolve) =>
      this.worker.once('exit', (code: number) => {
        this.exited = true;
        if (!this.finished && this.failure === undefined && (this.answered < this.posted || code !== 0)) {
          this.failure = new Error(`the views writer thread stopped (exit code ${code})`);
        }
        this.poke();
        resolve();
      }),
    );
    this.db = this.recordingDb();
  }

  /** Sends the writes recorded since the last call as one batch, moving the checkpoints in `set`. */
  async commit(
    expect: [string, number][],
    set: [string, number, string][],
    position: bigint,
    events: number,
  ): Promise<'committed' | 'conflict'> {
    this.check();
    if (this.conflict) return 'conflict';
    this.posted++;
    this.inFlight.push({ position, events });
    const n = this.opsLength;
    this.thread.post({
      t: 'batch',
      seq: this.posted,
      sqls: this.newStatements.splice(0),
      ops: this.ops.slice(0, n),
      expect,
      set,
    });
    this.ops.fill(null, 0, n);
    this.opsLength = 0;
    while (this.posted - this.answered >= this.maxInFlight && this.failure === undefined && !this.conflict) {
      await this.waitForReply();
    }
    this.check();
    return this.conflict ? 'conflict' : 'committed';
  }

  /** Waits until every batch sent is answered; throws if one failed. */
  async drain(): Promise<'committed' | 'conflict'> {
    while (this.answered < this.posted && this.failure === undefined && !this.exited) await this.waitForReply();
    this.check();
    return this.conflict ? 'conflict' : 'committed';
  }

  /** After the last batch: runs `sql` (the index builds) in the thread, checkpoints the WAL, ends the thread. */
  async finish(sql: string[]): Promise<void> {
    if ((await this.drain()) === 'conflict') throw new Error('the views writer thread met a conflict');
    this.thread.post({ t: 'finish', sql });
    while (!this.finished && this.failure === undefined && !this.exited) await this.waitForReply();
    await this.exit;
    this.check();
  }

  /** Ends the thread after what was sent (a conflict, a failure, or the fold failed): no error of its own. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.thread.post({ t: 'close' });
      const timeout = setTimeout(() => void this.worker.terminate(), READ_WAIT_MS);
      await this.exit;
      clearTimeout(timeout);
    }
  }

  // ---- internals -----------------------------------------------------------------------------------

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async waitForReply(): Promise<void> {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    this.waitedMs += performance.now() - t0;
  }

  private onReply(reply: WriterReply): void {
    switch (reply.t) {
      case 'ok': {
        this.answered = reply.seq;
        const b = this.inFlight.shift()!;
        this.committedEvents += b.events;
        this.onCommitted(b.position, b.events);
        break;
      }
      case 'conflict':
        this.answered = reply.seq;
        this.inFlight.shift();
        this.conflict = true;
        break;
      case 'skipped':
        this.answered = reply.seq;
        this.inFlight.shift();
        break;
      case 'error': {
        if (reply.seq >= 0) {
          this.answered = reply.seq;
          this.inFlight.shift();
        }
        const cause = Object.assign(new Error(reply.message), { code: reply.code });
        const e = translateViewsError(cause, this.real.path);
        this.failure ??=
          e === cause ? new Error(`the views writer thread failed: ${reply.message}`, { cause }) : (e as Error);
        break;
      }
      case 'finished':
        this.finished = true;
        break;
    }
    this.poke();
  }

  /** Blocks until the thread has answered every batch sent (a read must see the fold's own writes). */
  private waitSync(): void {
    const state = this.thread.state;
    const t0 = performance.now();
    for (;;) {
      const answered = Atomics.load(state, 0);
      if (answered >= this.posted || Atomics.load(state, 1) !== 0) break;
      if (Atomics.wait(state, 0, answered, READ_WAIT_MS) === 'timed-out') {
        throw new Error(`the views writer thread did not answer for ${READ_WAIT_MS / 1000} s`);
      }
    }
    this.waitedMs += performance.now() - t0;
  }

  private record(id: number, params: SqlParams | undefined): void {
    if (params !== undefined && !Array.isArray(params)) {
      throw new Error('a pipelined statement takes positional parameters');
    }
    const values = (params ?? []) as readonly SqlValue[];
    const ops = this.ops;
    const last = this.lastParams[id];
    const kept: SqlValue[] = new Array<SqlValue>(values.length);
    let n = this.opsLength;
    ops[n++] = id;
    ops[n++] = values.length;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v === 'string') {
        ops[n++] = last !== undefined && last[i] === v ? undefined : v;
        kept[i] = v;
      } else {
        // the driver binds undefined as null
        const value = v === undefined ? null : typeof v === 'bigint' ? Number(v) : v;
        ops[n++] = value;
        kept[i] = value;
      }
    }
    this.lastParams[id] = kept;
    this.opsLength = n;
  }

  private statementId(sql: string): number {
    let id = this.statementIds.get(sql);
    if (id === undefined) {
      id = this.statementIds.size;
      this.statementIds.set(sql, id);
      this.newStatements.push(sql);
    }
    return id;
  }

  private recordingDb(): ViewsDb {
    const real = this.real;
    const notHere = (what: string) => (): never => {
      throw new Error(`${what} is not available to a pipelined fold`);
    };
    return {
      path: real.path,
      exec: notHere('exec'),
      immediate: notHere('a transaction'),
      read: <T>(fn: () => T): T => {
        this.waitSync();
        return real.read(fn);
      },
      close: () => {},
      prepare: <Row>(sql: string): Statement<Row> => {
        const id = this.statementId(sql);
        const statement = real.prepare<Row>(sql);
        return {
          run: (params?: SqlParams) => {
            this.record(id, params);
            return UNKNOWN_RESULT;
          },
          get: (params?: SqlParams) => {
            this.waitSync();
            return statement.get(params);
          },
          all: (params?: SqlParams) => {
            this.waitSync();
            return statement.all(params);
          },
        };
      },
    };
  }
}
