/**
 * The SQLite store's group commit: every write of one turn of the event loop (all agents and workers of a process,
 * a group's acks and claims) goes into one IMMEDIATE transaction, so a process pays one write lock and one WAL
 * sync per turn instead of one per write.
 *
 * The fast way runs the jobs without savepoints; if one fails, the whole transaction rolls back and the batch runs
 * again with a savepoint per job, so a conflict fails only its own write.
 */
import type Database from 'better-sqlite3';

export interface GroupCommitHooks {
  /** Whether the store is closed: then a job is refused (queued ones fail with `closedError`). */
  isClosed(): boolean;
  closedError(): Error;
  /** The adapter's translation of driver errors into ours. */
  translate(e: unknown): unknown;
  /** A flush committed, having written to `touched` (its subscribers are worth waking). */
  committed(touched: ReadonlySet<string>): void;
}

export interface GroupCommit {
  /** Runs `run` inside the next flush's transaction; resolves with its value or rejects with its translated error. */
  enqueue<T>(run: () => T): Promise<T>;
  /** Marks `stream` as written by the flush under way (a job calls it). */
  touch(stream: string): void;
  /** Writes what is queued now (the store's close calls it). */
  flush(): void;
}

interface Job {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  ok?: boolean;
  value?: unknown;
}

const isLockError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
};

/** Thrown out of the fast transaction to roll it back and run the batch isolated. */
class JobFailed extends Error {}

export function groupCommit(db: Database.Database, hooks: GroupCommitHooks): GroupCommit {
  let jobs: Job[] = [];
  let flushScheduled = false;
  /** The streams appended to by the flush under way: its notification wakes only their subscribers. */
  let touched = new Set<string>();
  const savepoint = db.transaction((run: () => unknown) => run());
  /** Every job in a savepoint of its own: a failing job rolls back alone. */
  const flushIsolated = db.transaction((batch: Job[]) => {
    for (const job of batch) {
      try {
        job.value = savepoint(job.run);
        job.ok = true;
      } catch (e: unknown) {
        job.value = e;
        job.ok = false;
      }
    }
  });
  /** The fast way: no savepoints; if any job fails, the whole transaction rolls back and the batch runs isolated. */
  const flushOptimistic = db.transaction((batch: Job[]) => {
    for (const job of batch) {
      try {
        job.value = job.run();
        job.ok = true;
      } catch (e: unknown) {
        if (isLockError(e)) throw e;
        throw new JobFailed();
      }
    }
  });
  const runBatch = (batch: Job[]): void => {
    try {
      flushOptimistic.immediate(batch);
    } catch (e: unknown) {
      if (!(e instanceof JobFailed)) throw e;
      touched = new Set();
      flushIsolated.immediate(batch);
    }
  };

  const flush = (): void => {
    flushScheduled = false;
    const batch = jobs;
    jobs = [];
    if (batch.length === 0) return;
    touched = new Set();
    if (hooks.isClosed()) {
      for (const job of batch) job.reject(hooks.closedError());
      return;
    }
    try {
      runBatch(batch);
    } catch (e: unknown) {
      const err = hooks.translate(e);
      for (const job of batch) job.reject(err);
      return;
    }
    hooks.committed(touched);
    for (const job of batch) {
      if (job.ok) job.resolve(job.value);
      else job.reject(hooks.translate(job.value));
    }
  };

  return {
    enqueue<T>(run: () => T): Promise<T> {
      if (hooks.isClosed()) throw hooks.closedError();
      return new Promise<T>((resolve, reject) => {
        jobs.push({ run, resolve: resolve as (v: unknown) => void, reject });
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });
    },
    touch(stream: string): void {
      touched.add(stream);
    },
    flush,
  };
}
