/**
 * `run_series`, `run_series_cursor` and `run_marks`: a run's RunState over time, for the monitor's charts. The
 * counters are sampled once per second of the workflow clock (the last value in each second), a second's row
 * written when a later second begins; the open second, the latency histogram (queued → done, per completed slice)
 * and the last phase seen live in the cursor row. Phase changes (and the run finishing) are marks on the time axis.
 *
 * Built from the same RunState the run page shows (this part runs after the others, so it sees their steps), so a
 * chart never disagrees with the counters; reading a run's series is an indexed range, not a scan of the log.
 */
import { isFinished } from '../../machines/run.js';
import { NO_WRITES, type ProjectedEvent, type ProjectionPart, type Write } from '../projection.js';
import { LATENCY_EDGES_MS, latencyBin } from '../seriesBins.js';
import { filesPart } from './files.js';
import { runsPart } from './runs.js';
import { slicesPart } from './slices.js';
import type { SeriesCursor, WorkflowState } from './state.js';

const CLOSE_SECOND = `INSERT INTO run_series (run_number, t, completed, failed, retried, queued, processing, workers,
  stfs, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_number, t) DO UPDATE SET
  completed = excluded.completed, failed = excluded.failed, retried = excluded.retried, queued = excluded.queued,
  processing = excluded.processing, workers = excluded.workers, stfs = excluded.stfs, samples = excluded.samples`;
const MARK = `INSERT INTO run_marks (position, run_number, time, phase) VALUES (?, ?, ?, ?)
  ON CONFLICT (position, phase) DO NOTHING`;

/** The run an event is about, for the events that can move a run's counters (none of the agents' own chatter). */
function runOf(e: ProjectedEvent): number | undefined {
  const p = e.parsed;
  if (!p) return undefined;
  let raw: unknown;
  if (p.kind === 'message') {
    const t = p.message.msg_type;
    if (t === 'agent_heartbeat' || t === 'agent_log') return undefined;
    raw = p.message.run_id;
  } else {
    raw = (p.data as { run_id?: unknown }).run_id;
  }
  if (typeof raw === 'string' && raw.length > 0 && raw.length < 16) {
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }
  return typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined;
}

/** Epoch seconds of an ISO time; the last one parsed is remembered (most events share their second). */
let lastPrefix = '';
let lastSecond = 0;
function secondOf(time: string): number | undefined {
  // 'YYYY-MM-DDTHH:MM:SS' of a UTC time names its second (compared in place: no string made per event); other
  // forms are parsed every time
  if (time.length >= 20 && time.charCodeAt(time.length - 1) === 90 /* Z */) {
    if (lastPrefix !== '' && time.startsWith(lastPrefix)) return lastSecond;
    const ms = Date.parse(time);
    if (!Number.isFinite(ms)) return undefined;
    lastPrefix = time.slice(0, 19);
    lastSecond = Math.floor(ms / 1000);
    return lastSecond;
  }
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/**
 * Epoch milliseconds of an ISO time. A canonical UTC time ('YYYY-MM-DDTHH:MM:SS.sssZ') in the second `secondOf` last
 * parsed is that second plus its milliseconds (a completed slice's time nearly always is: it is the event's own).
 */
function msOf(time: string): number {
  if (
    time.length === 24 &&
    time.charCodeAt(23) === 90 /* Z */ &&
    time.charCodeAt(19) === 46 /* . */ &&
    lastPrefix !== '' &&
    time.startsWith(lastPrefix)
  ) {
    const a = time.charCodeAt(20) - 48;
    const b = time.charCodeAt(21) - 48;
    const c = time.charCodeAt(22) - 48;
    if (a >= 0 && a <= 9 && b >= 0 && b <= 9 && c >= 0 && c <= 9) return lastSecond * 1000 + a * 100 + b * 10 + c;
  }
  return Date.parse(time);
}

function closeSecond(run: number, c: SeriesCursor): Write {
  return {
    sql: CLOSE_SECOND,
    params: [run, c.t, c.completed, c.failed, c.retried, c.queued, c.processing, c.workers, c.stfs, c.samples],
  };
}

export function evolveSeries(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const run = runOf(e);
  if (run === undefined) return NO_WRITES;
  const r = state.runs.get(run);
  if (!r) return NO_WRITES;
  const rc = r.snapshot.context;
  const finished = isFinished(r.snapshot);
  let c = state.series.get(run);
  if (
    c &&
    c.completed === rc.slices_completed &&
    c.failed === rc.slices_failed &&
    c.retried === rc.slices_retried &&
    c.queued === rc.slices_queued &&
    c.processing === rc.slices_processing &&
    c.workers === rc.active_worker_count &&
    c.stfs === rc.stf_files &&
    c.samples === rc.stf_samples_received &&
    c.phase === rc.phase &&
    c.finished === finished
  )
    return NO_WRITES;
  const second = secondOf(e.time);
  if (second === undefined) return NO_WRITES;
  let writes: Write[] | undefined;
  if (!c) {
    c = {
      first: second,
      t: second,
      completed: 0,
      failed: 0,
      retried: 0,
      queued: 0,
      processing: 0,
      workers: 0,
      stfs: 0,
      samples: 0,
      phase: '',
      finished: false,
      latency: LATENCY_EDGES_MS.map(() => 0),
    };
  } else if (second > c.t) {
    writes = [closeSecond(run, c)];
    c.t = second;
  }
  // one slice completes per event: the one this result is about
  if (
    rc.slices_completed > c.completed &&
    e.parsed?.kind === 'message' &&
    e.parsed.message.msg_type === 'slice_result'
  ) {
    const x = state.slices.get(e.parsed.message.content.tf_filename);
    if (x?.completedAt) {
      const ms = msOf(x.completedAt) - Date.parse(x.createdAt);
      if (Number.isFinite(ms)) c.latency[latencyBin(ms)]! += 1;
    }
  }
  if (c.phase !== rc.phase) {
    (writes ??= []).push({ sql: MARK, params: [Number(e.position), run, e.time, rc.phase] });
    c.phase = rc.phase;
  }
  if (finished && !c.finished)
    (writes ??= []).push({ sql: MARK, params: [Number(e.position), run, e.time, 'finished'] });
  c.finished = finished;
  c.completed = rc.slices_completed;
  c.failed = rc.slices_failed;
  c.retried = rc.slices_retried;
  c.queued = rc.slices_queued;
  c.processing = rc.slices_processing;
  c.workers = rc.active_worker_count;
  c.stfs = rc.stf_files;
  c.samples = rc.stf_samples_received;
  state.series.put(run, c);
  return writes ?? NO_WRITES;
}

/**
 * The series reads the events that can step a run (the ones the runs, files and slices parts read): the RunState
 * changes at no other event, and at any other the series would find its cursor equal to the run and write nothing.
 */
export const seriesPart: ProjectionPart<WorkflowState> = {
  evolve: evolveSeries,
  messages: [...new Set([...runsPart.messages, ...filesPart.messages, ...slicesPart.messages])],
  domainEvents: [...new Set([...runsPart.domainEvents, ...slicesPart.domainEvents])],
};
