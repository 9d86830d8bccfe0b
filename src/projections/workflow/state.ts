/**
 * The state the workflow projection's parts fold between events, and the rows it lives in: an execution's
 * parameters, a run's machine snapshot (RunState), a TF sample, a slice's machine snapshot. The runner loads,
 * caches and writes these (see `fold.ts`); the parts only read and change them.
 */
import type { FastSnapshot } from '../../machines/fastPath.js';
import { isFinished, RUN_STATE_FIELDS, type RunContext } from '../../machines/run.js';
import { runStateParamsOf } from '../../machines/runState.js';
import type { SliceContext } from '../../machines/slice.js';
import type { SqlValue } from '../db.js';
import { int, isRecord, type Keyed, type ProjectedEvent, type StateSpec, type Write } from '../projection.js';

export const json = (v: unknown): string => JSON.stringify(v);

export interface ExecutionParams {
  maxRetries: number;
  targetWorkers: number | undefined;
  stfSamplingRate: number | undefined;
  slicesPerSample: number | undefined;
}

export interface RunEntry {
  snapshot: FastSnapshot<RunContext>;
  executionId: string | null;
  namespace: string | null;
  stateChangedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  metadata: string | null;
}

export interface SampleEntry {
  fileId: string;
  stfFilename: string;
  run: number;
  executionId: string | null;
  namespace: string | null;
  tfFirst: number | null;
  tfLast: number | null;
  tfCount: number | null;
  sizeBytes: number | null;
  checksum: string | null;
  status: string;
  sliceCount: number;
  createdAt: string;
  updatedAt: string;
  metadata: string | null;
}

export interface SliceEntry {
  fastmonFile: string;
  stfFilename: string;
  run: number;
  executionId: string | null;
  namespace: string | null;
  sliceId: number;
  tfFirst: number;
  tfLast: number;
  tfCount: number;
  snapshot: FastSnapshot<SliceContext>;
  assignedWorker: string | null;
  assignedAt: string | null;
  completedAt: string | null;
  createdAt: string;
  updatedAt: string;
  metadata: string | null;
  /** Log positions of the events naming the slice, comma-separated (`tf_slices.event_positions`). */
  eventPositions: string;
}

/** A run's open second of its time series, with what the series needs to know of the run so far. */
export interface SeriesCursor {
  /** The run's first second (epoch seconds, workflow clock). */
  first: number;
  /** The open second. */
  t: number;
  completed: number;
  failed: number;
  retried: number;
  queued: number;
  processing: number;
  workers: number;
  stfs: number;
  samples: number;
  phase: string;
  finished: boolean;
  /** Completed slices per latency bin (`seriesBins.ts`). */
  latency: number[];
}

export interface WorkflowState {
  executions: Keyed<string, ExecutionParams>;
  runs: Keyed<number, RunEntry>;
  samples: Keyed<string, SampleEntry>;
  slices: Keyed<string, SliceEntry>;
  series: Keyed<number, SeriesCursor>;
}

export function paramsOf(parameterValues: unknown): ExecutionParams {
  const fp =
    isRecord(parameterValues) && isRecord(parameterValues.fast_processing) ? parameterValues.fast_processing : {};
  const rule = runStateParamsOf(parameterValues);
  return {
    maxRetries: rule.max_slice_retries,
    targetWorkers: rule.target_worker_count,
    stfSamplingRate: typeof fp.stf_sampling_rate === 'number' ? fp.stf_sampling_rate : undefined,
    slicesPerSample: int(fp.slices_per_sample),
  };
}

const DEFAULT_PARAMS = paramsOf(undefined);

/** The parameters of an execution (the defaults when the log has not started it). */
export const paramsFor = (state: WorkflowState, executionId: string | null | undefined): ExecutionParams =>
  (executionId ? state.executions.get(executionId) : undefined) ?? DEFAULT_PARAMS;

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const count = (v: unknown): number | null => (typeof v === 'number' ? v : null);

const executions: StateSpec<string, ExecutionParams> = {
  table: 'workflow_executions',
  key: 'execution_id',
  columns: 'execution_id, parameter_values',
  fromRow: (row) => paramsOf(JSON.parse(row.parameter_values as string) as unknown),
};

const runs: StateSpec<number, RunEntry> = {
  table: 'run_states',
  key: 'run_number',
  columns: `run_number, snapshot, execution_id, namespace, state_changed_at, updated_at,
    finished_at, metadata`,
  fromRow: (row) => ({
    snapshot: JSON.parse(row.snapshot as string) as FastSnapshot<RunContext>,
    executionId: text(row.execution_id),
    namespace: text(row.namespace),
    stateChangedAt: row.state_changed_at as string,
    updatedAt: row.updated_at as string,
    finishedAt: text(row.finished_at),
    metadata: text(row.metadata),
  }),
  toWrite: (run, r): Write => {
    const c = r.snapshot.context;
    const params: SqlValue[] = [run];
    for (const f of RUN_STATE_FIELDS) params.push(c[f]);
    params.push(
      c.refusals,
      isFinished(r.snapshot) ? 1 : 0,
      r.finishedAt,
      r.stateChangedAt,
      r.updatedAt,
      r.executionId,
      r.namespace,
      r.metadata,
      json({ value: r.snapshot.value, context: c }),
    );
    return { sql: UPSERT_RUN_STATE, params };
  },
};

/** RunState's own fields (`RUN_STATE_FIELDS`), then what the view adds. */
const RUN_STATE_COLUMNS = [
  'run_number',
  ...RUN_STATE_FIELDS,
  'refusals',
  'finished',
  'finished_at',
  'state_changed_at',
  'updated_at',
  'execution_id',
  'namespace',
  'metadata',
  'snapshot',
];

const UPSERT_RUN_STATE = `INSERT INTO run_states (${RUN_STATE_COLUMNS.join(', ')})
  VALUES (${RUN_STATE_COLUMNS.map(() => '?').join(', ')})
  ON CONFLICT (run_number) DO UPDATE SET ${RUN_STATE_COLUMNS.slice(1)
    .map((col) => `${col} = excluded.${col}`)
    .join(', ')}`;

const UPSERT_SAMPLE = `INSERT INTO fastmon_files (tf_file_id, tf_filename, stf_filename, run_number, execution_id,
  namespace, tf_first, tf_last, tf_count, file_size_bytes, checksum, status, slice_count, created_at, updated_at,
  metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (tf_filename) DO UPDATE SET slice_count = excluded.slice_count`;

const samples: StateSpec<string, SampleEntry> = {
  table: 'fastmon_files',
  key: 'tf_filename',
  fromRow: (row) => ({
    fileId: row.tf_file_id as string,
    stfFilename: row.stf_filename as string,
    run: row.run_number as number,
    executionId: text(row.execution_id),
    namespace: text(row.namespace),
    tfFirst: count(row.tf_first),
    tfLast: count(row.tf_last),
    tfCount: count(row.tf_count),
    sizeBytes: count(row.file_size_bytes),
    checksum: text(row.checksum),
    status: row.status as string,
    sliceCount: row.slice_count as number,
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
    metadata: text(row.metadata),
  }),
  toWrite: (name, x) => ({
    sql: UPSERT_SAMPLE,
    params: [
      x.fileId,
      name,
      x.stfFilename,
      x.run,
      x.executionId,
      x.namespace,
      x.tfFirst,
      x.tfLast,
      x.tfCount,
      x.sizeBytes,
      x.checksum,
      x.status,
      x.sliceCount,
      x.createdAt,
      x.updatedAt,
      x.metadata,
    ],
  }),
};

const INSERT_SLICE = `INSERT INTO tf_slices (id, tf_filename, fastmon_file, stf_filename, run_number, execution_id,
  namespace, slice_id, tf_first, tf_last, tf_count, status, attempt, retries, max_retries, assigned_worker,
  assigned_at, lease_deadline, completed_at, last_error, refusals, last_refusal, created_at, updated_at, metadata,
  event_positions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const UPDATE_SLICE = `UPDATE tf_slices SET status = ?, attempt = ?, retries = ?, assigned_worker = ?, assigned_at = ?,
  lease_deadline = ?, completed_at = ?, last_error = ?, refusals = ?, last_refusal = ?, updated_at = ?, metadata = ?,
  event_positions = ? WHERE id = ?`;

/** The slice file name an event is about. */
function sliceNameOf(e: ProjectedEvent): string | undefined {
  const p = e.parsed;
  if (!p) return undefined;
  if (p.kind === 'message') {
    const m = p.message;
    return m.msg_type === 'slice' || m.msg_type === 'slice_result' ? m.content.tf_filename : undefined;
  }
  return p.type === 'SliceProcessingStarted' || p.type === 'SliceLeaseExpired' ? p.data.tf_filename : undefined;
}

const slices: StateSpec<string, SliceEntry> = {
  table: 'tf_slices',
  key: 'tf_filename',
  fromRow: (row) => {
    const status = row.status as string;
    const lastRefusal = text(row.last_refusal);
    return {
      fastmonFile: row.fastmon_file as string,
      stfFilename: row.stf_filename as string,
      run: row.run_number as number,
      executionId: text(row.execution_id),
      namespace: text(row.namespace),
      sliceId: row.slice_id as number,
      tfFirst: row.tf_first as number,
      tfLast: row.tf_last as number,
      tfCount: row.tf_count as number,
      snapshot: {
        value: status,
        context: {
          attempt: row.attempt as number,
          retries: row.retries as number,
          max_retries: row.max_retries as number,
          // the machine holds the worker only while processing; the row keeps who processed it
          worker: status === 'processing' ? text(row.assigned_worker) : null,
          lease_deadline: text(row.lease_deadline),
          last_error: text(row.last_error),
          refusals: row.refusals as number,
          lastRefusal: lastRefusal === null ? null : (JSON.parse(lastRefusal) as SliceContext['lastRefusal']),
        },
      },
      assignedWorker: text(row.assigned_worker),
      assignedAt: text(row.assigned_at),
      completedAt: text(row.completed_at),
      createdAt: row.created_at as string,
      updatedAt: row.updated_at as string,
      metadata: text(row.metadata),
      eventPositions: (row.event_positions as string | null) ?? '',
    };
  },
  rowid: 'id',
  toWrite: (name, x, row) => {
    const c = x.snapshot.context;
    const status = x.snapshot.value as string;
    const lastRefusal = c.lastRefusal === null ? null : json(c.lastRefusal);
    if (row.stored) {
      return {
        sql: UPDATE_SLICE,
        params: [
          status,
          c.attempt,
          c.retries,
          x.assignedWorker,
          x.assignedAt,
          c.lease_deadline,
          x.completedAt,
          c.last_error,
          c.refusals,
          lastRefusal,
          x.updatedAt,
          x.metadata,
          x.eventPositions,
          row.id,
        ],
      };
    }
    return {
      sql: INSERT_SLICE,
      params: [
        row.id,
        name,
        x.fastmonFile,
        x.stfFilename,
        x.run,
        x.executionId,
        x.namespace,
        x.sliceId,
        x.tfFirst,
        x.tfLast,
        x.tfCount,
        status,
        c.attempt,
        c.retries,
        c.max_retries,
        x.assignedWorker,
        x.assignedAt,
        c.lease_deadline,
        x.completedAt,
        c.last_error,
        c.refusals,
        lastRefusal,
        x.createdAt,
        x.updatedAt,
        x.metadata,
        x.eventPositions,
      ],
    };
  },
  isFinal: (x) => x.snapshot.value === 'completed' || x.snapshot.value === 'failed',
  keyOf: sliceNameOf,
};

const UPSERT_SERIES_CURSOR = `INSERT INTO run_series_cursor (run_number, first, t, completed, failed, retried,
  queued, processing, workers, stfs, samples, phase, finished, latency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (run_number) DO UPDATE SET t = excluded.t, completed = excluded.completed, failed = excluded.failed,
  retried = excluded.retried, queued = excluded.queued, processing = excluded.processing, workers = excluded.workers,
  stfs = excluded.stfs, samples = excluded.samples, phase = excluded.phase, finished = excluded.finished,
  latency = excluded.latency`;

const series: StateSpec<number, SeriesCursor> = {
  table: 'run_series_cursor',
  key: 'run_number',
  fromRow: (row) => ({
    first: row.first as number,
    t: row.t as number,
    completed: row.completed as number,
    failed: row.failed as number,
    retried: row.retried as number,
    queued: row.queued as number,
    processing: row.processing as number,
    workers: row.workers as number,
    stfs: row.stfs as number,
    samples: row.samples as number,
    phase: row.phase as string,
    finished: row.finished === 1,
    latency: JSON.parse(row.latency as string) as number[],
  }),
  toWrite: (run, c) => ({
    sql: UPSERT_SERIES_CURSOR,
    params: [
      run,
      c.first,
      c.t,
      c.completed,
      c.failed,
      c.retried,
      c.queued,
      c.processing,
      c.workers,
      c.stfs,
      c.samples,
      c.phase,
      c.finished ? 1 : 0,
      json(c.latency),
    ],
  }),
};

export const WORKFLOW_STATE = { executions, runs, samples, slices, series } as const;
