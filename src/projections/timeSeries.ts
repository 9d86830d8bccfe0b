/**
 * A run's time series, read from the rows `workflow/series.ts` folds (never from the log): the per-second samples
 * of its RunState grouped into at most `points` intervals, the slice latency histogram, and the phase marks.
 * Counters that only grow (completed, failed, retried) are given per interval; levels (queue depth, workers busy,
 * STFs and samples so far) as their value at the end of each interval, carried over intervals with no change.
 */
import { NotFoundError } from '../errors.js';
import type { ViewsDb } from './db.js';
import { LATENCY_EDGES_MS } from './seriesBins.js';

export interface SeriesOptions {
  /** At most this many intervals (default 300). */
  points?: number;
}

export interface RunSeries {
  run_number: number;
  /** Seconds per interval. */
  step_seconds: number;
  /** Epoch seconds (workflow clock) of the first and of the last sampled second. */
  start: number;
  end: number;
  phase: string;
  finished: boolean;
  /** Epoch seconds each interval starts at; every other array has one value per interval. */
  t: number[];
  slices_completed: number[];
  slices_failed: number[];
  slices_retried: number[];
  slices_queued: number[];
  /** Slices being processed: each takes one worker, so also the workers busy. */
  slices_processing: number[];
  workers_active: number[];
  stf_files: number[];
  samples: number[];
  latency: LatencyHistogram;
  marks: { position: number; time: string; phase: string }[];
}

export interface LatencyHistogram {
  /** Bin `i` holds latencies in [edges_ms[i], edges_ms[i + 1]); the last bin is open-ended. */
  edges_ms: readonly number[];
  counts: number[];
  count: number;
  /** Upper edge of the bin holding the percentile (null: no completed slice yet, or in the open-ended bin). */
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
}

interface SampleRow {
  t: number;
  completed: number;
  failed: number;
  retried: number;
  queued: number;
  processing: number;
  workers: number;
  stfs: number;
  samples: number;
}

interface CursorRow extends SampleRow {
  first: number;
  phase: string;
  finished: number;
  latency: string;
}

const LAST_PER_INTERVAL = `WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?)
  SELECT g.i AS g, s.t, s.completed, s.failed, s.retried, s.queued, s.processing, s.workers, s.stfs, s.samples
  FROM g JOIN run_series s ON s.run_number = ?
  AND s.t = (SELECT MAX(t) FROM run_series WHERE run_number = ? AND t <= ? + (g.i + 1) * ? - 1)`;

function percentileEdge(counts: number[], total: number, p: number): number | null {
  if (total === 0) return null;
  const want = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= want) return LATENCY_EDGES_MS[i + 1] ?? null;
  }
  return null;
}

export function latencyHistogram(counts: number[]): LatencyHistogram {
  const count = counts.reduce((a, b) => a + b, 0);
  return {
    edges_ms: LATENCY_EDGES_MS,
    counts,
    count,
    p50_ms: percentileEdge(counts, count, 50),
    p90_ms: percentileEdge(counts, count, 90),
    p99_ms: percentileEdge(counts, count, 99),
  };
}

/** A run's slice latency histogram (queued → done) alone. */
export function runLatency(db: ViewsDb, run: number): LatencyHistogram & { run_number: number; finished: boolean } {
  const cursor = db
    .prepare<{ latency: string; finished: number }>(
      `SELECT latency, finished FROM run_series_cursor WHERE run_number = ?`,
    )
    .get([run]);
  if (!cursor) {
    if (!db.prepare(`SELECT 1 FROM run_states WHERE run_number = ?`).get([run]))
      throw new NotFoundError(`no run ${run}`);
    return { run_number: run, finished: false, ...empty(run).latency };
  }
  return {
    run_number: run,
    finished: cursor.finished === 1,
    ...latencyHistogram(JSON.parse(cursor.latency) as number[]),
  };
}

export function runSeries(db: ViewsDb, run: number, options: SeriesOptions = {}): RunSeries {
  const points = Math.max(1, Math.floor(options.points ?? 300));
  return db.read(() => {
    const cursor = db.prepare<CursorRow>(`SELECT * FROM run_series_cursor WHERE run_number = ?`).get([run]);
    if (!cursor) {
      const known = db.prepare(`SELECT 1 FROM run_states WHERE run_number = ?`).get([run]);
      if (!known) throw new NotFoundError(`no run ${run}`);
      return empty(run);
    }
    const start = cursor.first;
    const step = Math.max(1, Math.ceil((cursor.t - start + 1) / points));
    const n = Math.floor((cursor.t - start) / step) + 1;
    // Each interval's last sample, one index seek per interval: reading every sample of a long run (a 1,000-STF
    // virtual-time run has thousands) and grouping them costs ten times more. The open second is the cursor's.
    const rows = db.prepare<SampleRow & { g: number }>(LAST_PER_INTERVAL).all([n - 1, run, run, start, step]);
    const byGroup = new Map<number, SampleRow>();
    for (const r of rows) byGroup.set(r.g, r);
    byGroup.set(n - 1, cursor);
    const out = empty(run);
    out.step_seconds = step;
    out.start = start;
    out.end = cursor.t;
    out.phase = cursor.phase;
    out.finished = cursor.finished === 1;
    let last: SampleRow = {
      t: start,
      completed: 0,
      failed: 0,
      retried: 0,
      queued: 0,
      processing: 0,
      workers: 0,
      stfs: 0,
      samples: 0,
    };
    for (let g = 0; g < n; g++) {
      const r = byGroup.get(g) ?? last;
      out.t.push(start + g * step);
      out.slices_completed.push(r.completed - last.completed);
      out.slices_failed.push(r.failed - last.failed);
      out.slices_retried.push(r.retried - last.retried);
      out.slices_queued.push(r.queued);
      out.slices_processing.push(r.processing);
      out.workers_active.push(r.workers);
      out.stf_files.push(r.stfs);
      out.samples.push(r.samples);
      last = r;
    }
    out.latency = latencyHistogram(JSON.parse(cursor.latency) as number[]);
    out.marks = db
      .prepare<{ position: number; time: string; phase: string }>(
        `SELECT position, time, phase FROM run_marks WHERE run_number = ? ORDER BY position`,
      )
      .all([run]);
    return out;
  });
}

function empty(run: number): RunSeries {
  return {
    run_number: run,
    step_seconds: 1,
    start: 0,
    end: 0,
    phase: '',
    finished: false,
    t: [],
    slices_completed: [],
    slices_failed: [],
    slices_retried: [],
    slices_queued: [],
    slices_processing: [],
    workers_active: [],
    stf_files: [],
    samples: [],
    latency: latencyHistogram(LATENCY_EDGES_MS.map(() => 0)),
    marks: [],
  };
}
