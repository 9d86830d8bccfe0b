/**
 * Time comes from one injected clock (DESIGN.md semantics 10).
 *
 * - `VirtualClock`: runs as fast as the machine allows, starting at the wall-clock time the run starts. Every
 *   task (agent loop, DAQ, worker) tells the clock when it waits for input (`idle`) or sleeps; when no task can
 *   make progress, the clock jumps to the earliest sleeper's wake-up time. In one process this is deterministic:
 *   nothing but the tasks themselves decides what happens next.
 * - `RealClock`: paces sleeps in real time, divided by `speed`; timestamps are the wall clock's.
 */

export interface Clock {
  readonly mode: 'virtual' | 'realtime';
  /** Milliseconds since the epoch, the clock's. */
  now(): number;
  /** `now()` as ISO-8601 UTC with `Z`. */
  iso(): string;
  /** Waits `seconds` of configured time (virtual: instantly in wall time; realtime: seconds / speed). */
  sleep(seconds: number): Promise<void>;
  /**
   * Waits until the clock reads `ms` (a deadline computed with `durationMs`), or until `interrupt` resolves,
   * whichever comes first.
   */
  sleepUntil(ms: number, interrupt?: Promise<void>): Promise<void>;
  /** How long `seconds` of configured time is in this clock's milliseconds (for deadlines). */
  durationMs(seconds: number): number;
  /** Wraps a wait for outside input (a subscription's next event), so a virtual clock knows the task is idle. */
  idle<T>(waiting: Promise<T>): Promise<T>;
  /** Runs a task the clock must account for (it is busy until it sleeps, waits or ends). */
  task<T>(fn: () => Promise<T>): Promise<T>;
  /** Wakes every sleeper and makes later sleeps return at once: the run is over. */
  shutdown(): void;
  readonly isShutDown: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Event-loop turns with no task waking up before a virtual clock moves on. */
const QUIET_TURNS = 4;

export class RealClock implements Clock {
  readonly mode = 'realtime' as const;
  private stopped = false;
  private readonly sleepers = new Set<() => void>();

  constructor(readonly speed = 1) {
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a positive number, got ${speed}`);
  }

  now(): number {
    return Date.now();
  }
  iso(): string {
    return iso(this.now());
  }
  durationMs(seconds: number): number {
    return (seconds * 1000) / this.speed;
  }
  sleep(seconds: number): Promise<void> {
    if (this.stopped || seconds <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.durationMs(seconds));
      this.sleepers.add(done);
    });
  }
  sleepUntil(ms: number, interrupt?: Promise<void>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms - this.now()));
      this.sleepers.add(done);
      void interrupt?.then(done);
    });
  }
  idle<T>(waiting: Promise<T>): Promise<T> {
    return waiting;
  }
  task<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  shutdown(): void {
    this.stopped = true;
    for (const s of [...this.sleepers]) s();
  }
  get isShutDown(): boolean {
    return this.stopped;
  }
}

interface Timer {
  at: number;
  seq: number;
  wake: () => void;
}

export class VirtualClock implements Clock {
  readonly mode = 'virtual' as const;
  private current: number;
  private active = 0;
  private seq = 0;
  private timers: Timer[] = [];
  private checkScheduled = false;
  /** Bumped whenever a task becomes busy or idle: the clock only moves after some turns without a change. */
  private generation = 0;
  private stopped = false;

  /**
   * @param start the clock's first reading (ms since the epoch): the wall clock when the run starts.
   * @param onStall called when no task is busy and nobody sleeps, yet tasks still wait: nothing can ever happen.
   */
  constructor(
    start: number,
    private readonly onStall: () => void = () => {},
    /** Outside work whose answer may wake a task (a network store's queries): the clock waits while it is busy. */
    private readonly outsideBusy: () => boolean = () => false,
    /** Resolves when the outside work is done (absent: the clock looks at `outsideBusy` again every millisecond). */
    private readonly outsideSettled?: () => Promise<void>,
  ) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }
  iso(): string {
    return iso(this.current);
  }
  durationMs(seconds: number): number {
    return seconds * 1000;
  }
  get isShutDown(): boolean {
    return this.stopped;
  }
  /** Busy tasks right now (for tests). */
  get busy(): number {
    return this.active;
  }

  async task<T>(fn: () => Promise<T>): Promise<T> {
    this.generation++;
    this.active++;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  async idle<T>(waiting: Promise<T>): Promise<T> {
    this.release();
    try {
      return await waiting;
    } finally {
      this.generation++;
      this.active++;
    }
  }

  sleep(seconds: number): Promise<void> {
    return this.sleepUntil(this.current + Math.max(0, Math.round(seconds * 1000)));
  }

  async sleepUntil(ms: number, interrupt?: Promise<void>): Promise<void> {
    if (this.stopped) return;
    const timer: Timer = { at: Math.max(this.current, ms), seq: this.seq++, wake: () => {} };
    const woken = new Promise<void>((wake) => {
      timer.wake = wake;
    });
    void woken.then(() => this.generation++);
    this.timers.push(timer);
    this.release();
    if (interrupt) {
      await Promise.race([
        woken,
        interrupt.then(() => {
          // Interrupted: the timer must not fire later for a task that has moved on.
          this.timers = this.timers.filter((t) => t !== timer);
        }),
      ]);
    } else await woken;
    this.generation++;
    this.active++;
  }

  shutdown(): void {
    this.stopped = true;
    const timers = this.timers;
    this.timers = [];
    for (const t of timers) t.wake();
  }

  private release(): void {
    this.generation++;
    this.active--;
    if (this.active <= 0) this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    // Two turns of the event loop: every promise continuation and every setImmediate callback queued by the
    // tasks (the store's group commit among them) runs before the clock decides that nothing is happening.
    // Several quiet turns of the event loop: every promise continuation and every setImmediate callback queued by
    // the tasks (the store's group commit, a claim it answers, the wake-ups it sends) runs before the clock decides
    // that nothing is happening. A task that woke up in between makes it start over.
    const start = this.generation;
    let turns = 0;
    const step = (): void => {
      if (this.generation !== start || this.active > 0) {
        this.checkScheduled = false;
        if (this.active <= 0) this.scheduleCheck();
        return;
      }
      if (this.outsideBusy()) {
        turns = 0;
        // Wait for the answers, then look again; without a promise to wait on, a timer, not setImmediate: the
        // event loop then blocks on I/O until the answer comes, instead of spinning.
        if (this.outsideSettled) void this.outsideSettled().then(() => setImmediate(step));
        else setTimeout(step, 1);
        return;
      }
      if (++turns < QUIET_TURNS) {
        setImmediate(step);
        return;
      }
      this.checkScheduled = false;
      this.advance();
    };
    setImmediate(step);
  }

  private advance(): void {
    if (this.active > 0 || this.stopped) return;
    if (this.timers.length === 0) {
      this.onStall();
      return;
    }
    let first = this.timers[0]!;
    for (const t of this.timers) if (t.at < first.at || (t.at === first.at && t.seq < first.seq)) first = t;
    const at = first.at;
    const due = this.timers.filter((t) => t.at === at).sort((a, b) => a.seq - b.seq);
    this.timers = this.timers.filter((t) => t.at !== at);
    this.current = Math.max(this.current, at);
    for (const t of due) t.wake();
  }
}
