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
  SLOT,
  type SqlParams,
  type SqlValue,
  type Statement,
  startWriterThread,
  translateViewsError,
  type ViewsDb,
  type WriterBatch,
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

/** Slots of a new pipeline's first batch (a batch of a 1,000-STF run's log needs some 40 000). */
const INITIAL_SLOTS = 1 << 16;

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
   * The batch being recorded (see `WriterBatch`): `slots` slots of `tags` and `numbers`, and its strings. The typed
   * arrays are moved to the thread with the batch; the next batch starts with new ones of the size the last needed.
   */
  private tags: Uint8Array<ArrayBuffer> = new Uint8Array(INITIAL_SLOTS);
  private numbers: Float64Array<ArrayBuffer> = new Float64Array(INITIAL_SLOTS);
  private strings: string[] = [];
  private slots = 0;
  /** Each statement's last recorded parameters (a string equal to the one before it is sent as `SLOT.SAME`). */
  private readonly lastParams: (readonly SqlValue[])[] = [];
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
    const batch: WriterBatch = {
      t: 'batch',
      seq: this.posted,
      sqls: this.newStatements.splice(0),
      slots: this.slots,
      tags: this.tags,
      numbers: this.numbers,
      strings: this.strings,
      expect,
      set,
    };
    this.tags = new Uint8Array(this.tags.length);
    this.numbers = new Float64Array(this.numbers.length);
    this.strings = [];
    this.slots = 0;
    this.thread.post(batch);
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
    const count = values.length;
    let n = this.slots;
    if (n + 2 + count > this.tags.length) this.grow(n + 2 + count);
    const { tags, numbers, strings } = this;
    const last = this.lastParams[id];
    tags[n] = SLOT.NUMBER;
    numbers[n++] = id;
    tags[n] = SLOT.NUMBER;
    numbers[n++] = count;
    for (let i = 0; i < count; i++, n++) {
      const v = values[i];
      if (typeof v === 'string') {
        if (last !== undefined && last[i] === v) tags[n] = SLOT.SAME;
        else {
          tags[n] = SLOT.STRING;
          strings.push(v);
        }
      } else if (typeof v === 'number') {
        tags[n] = SLOT.NUMBER;
        numbers[n] = v;
      } else if (typeof v === 'bigint') {
        tags[n] = SLOT.NUMBER;
        numbers[n] = Number(v);
      } else {
        // null, and undefined (the driver binds it as null)
        tags[n] = SLOT.NULL;
      }
    }
    // only its strings are compared with the next write's: the array itself, not a copy (it is not changed after)
    this.lastParams[id] = values;
    this.slots = n;
  }

  private grow(needed: number): void {
    let size = this.tags.length * 2;
    while (size < needed) size *= 2;
    const tags = new Uint8Array(size);
    tags.set(this.tags.subarray(0, this.slots));
    const numbers = new Float64Array(size);
    numbers.set(this.numbers.subarray(0, this.slots));
    this.tags = tags;
    this.numbers = numbers;
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
