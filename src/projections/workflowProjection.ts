/**
 * The workflow's read models: executions, runs, RunState, STF files, TF samples, TF slices, and the problems the
 * agents recorded (refused transitions, rejected messages) or the projection found (invalid events).
 *
 * Slice status and RunState counters are not guessed here: each slice is folded through the slice machine
 * (`fastSlice`, with the execution's `max_slice_retries`) and each run through the run machine (`fastRun`), so the
 * views apply exactly the rules the agents do. Slices are counted into RunState one by one as their first `slice`
 * message arrives, so the counters and the slice rows agree at every log position, and `queued + processing +
 * completed + failed = created` always holds (the run machine refuses any step that would break it).
 * `stf_samples_received` counts `tf_file_registered`.
 *
 * Hot state (runs, the slices not yet final) is kept in memory between events and written once per batch.
 */
import type { FastSnapshot } from '../machines/fastPath.js';
import { fastRun, fastSlice } from '../machines/registry.js';
import { isFinished, runEventOf, type RunContext, type RunEvent } from '../machines/run.js';
import { DEFAULT_MAX_SLICE_RETRIES, type SliceContext, type SliceEvent, type SliceStatus } from '../machines/slice.js';
import type { Message } from '../messages/schemas.js';
import type { ViewsDb } from './db.js';
import {
  executionIdOf,
  int,
  isRecord,
  namespaceOf,
  type ProjectedEvent,
  type Projection,
  runNumberOf,
} from './projection.js';

interface ExecutionParams {
  maxRetries: number;
  targetWorkers: number | undefined;
  stfSamplingRate: number | undefined;
  slicesPerSample: number | undefined;
}

interface RunEntry {
  run: number;
  snapshot: FastSnapshot<RunContext>;
  executionId: string | null;
  namespace: string | null;
  samples: number;
  stateChangedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  metadata: string | null;
}

interface SliceEntry {
  id: number | undefined;
  tfFilename: string;
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
}

interface RunStateRow {
  run_number: number;
  snapshot: string;
  stf_samples_received: number;
  execution_id: string | null;
  namespace: string | null;
  state_changed_at: string;
  updated_at: string;
  finished_at: string | null;
  metadata: string | null;
}

interface SliceRow {
  id: number;
  tf_filename: string;
  fastmon_file: string;
  stf_filename: string;
  run_number: number;
  execution_id: string | null;
  namespace: string | null;
  slice_id: number;
  tf_first: number;
  tf_last: number;
  tf_count: number;
  status: string;
  attempt: number;
  retries: number;
  max_retries: number;
  assigned_worker: string | null;
  assigned_at: string | null;
  lease_deadline: string | null;
  completed_at: string | null;
  last_error: string | null;
  refusals: number;
  last_refusal: string | null;
  created_at: string;
  updated_at: string;
  metadata: string | null;
}

const json = (v: unknown): string => JSON.stringify(v);

function paramsOf(parameterValues: unknown): ExecutionParams {
  const fp =
    isRecord(parameterValues) && isRecord(parameterValues.fast_processing) ? parameterValues.fast_processing : {};
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const retries = int(fp.max_slice_retries);
  return {
    maxRetries: retries !== undefined && retries >= 0 ? retries : DEFAULT_MAX_SLICE_RETRIES,
    targetWorkers: int(fp.target_worker_count),
    stfSamplingRate: num(fp.stf_sampling_rate),
    slicesPerSample: int(fp.slices_per_sample),
  };
}

export interface WorkflowProjectionOptions {
  /**
   * The tables were empty when this fold began and nothing else writes them until it ends (a catch-up from empty
   * views, its writes pipelined to the writer thread): what is not in memory is not in the tables, so the fold
   * reads nothing back, but for slices it let go of (`evicted`), and never asks for a write's result.
   */
  bulk?: boolean;
  /** Bulk: how many slices let go of the fold remembers by name (~100 bytes each) before it says it is full. */
  maxEvicted?: number;
}

export function createWorkflowProjection(db: ViewsDb, options: WorkflowProjectionOptions = {}): Projection {
  const bulk = options.bulk === true;
  const maxEvicted = options.maxEvicted ?? 500_000;
  const executions = new Map<string, ExecutionParams>();
  const runs = new Map<number, RunEntry>();
  const dirtyRuns = new Set<RunEntry>();
  const slices = new Map<string, SliceEntry>();
  const dirtySlices = new Map<string, SliceEntry>();
  const sampleSlices = new Map<string, number>();
  /** Bulk: the slices with a row that are no longer in memory (read back when an event needs them). */
  const evicted = new Set<string>();
  /** Bulk: the TF samples with a row; the next slice id. */
  const samples = new Set<string>();
  let nextSliceId = 1;

  // ---- statements ---------------------------------------------------------------------------------
  const s = {
    insertExecution: db.prepare(`INSERT INTO workflow_executions (execution_id, workflow_name, namespace,
      parameter_values, status, start_time, executed_by, machine_hash, machine_definitions, position)
      VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO NOTHING`),
    finishExecution: db.prepare(
      `UPDATE workflow_executions SET status = ?, end_time = ?, reason = ? WHERE execution_id = ?`,
    ),
    stopRequested: db.prepare(`UPDATE workflow_executions SET stop_requested_at = ? WHERE execution_id = ?`),
    executionParams: db.prepare<{ parameter_values: string }>(
      `SELECT parameter_values FROM workflow_executions WHERE execution_id = ?`,
    ),
    upsertRunAllocated: db.prepare(`INSERT INTO runs (run_number, execution_id, namespace, allocated_at, run_conditions)
      VALUES (?, ?, ?, ?, '{}') ON CONFLICT (run_number) DO UPDATE SET execution_id = excluded.execution_id,
      namespace = coalesce(runs.namespace, excluded.namespace), allocated_at = excluded.allocated_at`),
    upsertRunStart: db.prepare(`INSERT INTO runs (run_number, execution_id, namespace, start_time, run_conditions)
      VALUES (?, ?, ?, ?, '{}') ON CONFLICT (run_number) DO UPDATE SET
      execution_id = coalesce(runs.execution_id, excluded.execution_id), namespace = excluded.namespace,
      start_time = coalesce(runs.start_time, excluded.start_time)`),
    endRun: db.prepare(`UPDATE runs SET end_time = coalesce(end_time, ?), total_stf_files = ? WHERE run_number = ?`),
    datasetRun: db.prepare(`UPDATE runs SET dataset = ? WHERE run_number = ?`),
    runState: db.prepare<RunStateRow>(`SELECT run_number, snapshot, stf_samples_received, execution_id, namespace,
      state_changed_at, updated_at, finished_at, metadata FROM run_states WHERE run_number = ?`),
    upsertRunState: db.prepare(`INSERT INTO run_states (run_number, phase, state, substate, target_worker_count,
      active_worker_count, stf_samples_received, slices_created, slices_queued, slices_processing, slices_completed,
      slices_failed, slices_retried, stf_files, total_stf_files, refusals, finished, finished_at, state_changed_at,
      updated_at, execution_id, namespace, metadata, snapshot)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_number) DO UPDATE SET phase = excluded.phase, state = excluded.state,
      substate = excluded.substate, target_worker_count = excluded.target_worker_count,
      active_worker_count = excluded.active_worker_count, stf_samples_received = excluded.stf_samples_received,
      slices_created = excluded.slices_created, slices_queued = excluded.slices_queued,
      slices_processing = excluded.slices_processing, slices_completed = excluded.slices_completed,
      slices_failed = excluded.slices_failed, slices_retried = excluded.slices_retried,
      stf_files = excluded.stf_files, total_stf_files = excluded.total_stf_files, refusals = excluded.refusals,
      finished = excluded.finished, finished_at = excluded.finished_at,
      state_changed_at = excluded.state_changed_at, updated_at = excluded.updated_at,
      execution_id = excluded.execution_id, namespace = excluded.namespace, metadata = excluded.metadata,
      snapshot = excluded.snapshot`),
    insertStf: db.prepare(`INSERT INTO stf_files (file_id, stf_filename, run_number, execution_id, namespace,
      sequence, machine_state, daq_state, daq_substate, status, created_at, updated_at, metadata)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?, ?, ?) ON CONFLICT (stf_filename) DO NOTHING`),
    stfReady: db.prepare(`INSERT INTO stf_files (file_id, stf_filename, run_number, execution_id, namespace,
      sequence, machine_state, daq_state, daq_substate, file_size_bytes, checksum, status, created_at, updated_at,
      metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'processed', ?, ?, ?)
      ON CONFLICT (stf_filename) DO UPDATE SET file_size_bytes = excluded.file_size_bytes,
      checksum = excluded.checksum, status = 'processed', updated_at = excluded.updated_at,
      metadata = json_patch(coalesce(stf_files.metadata, '{}'), excluded.metadata)`),
    stfSample: db.prepare(`UPDATE stf_files SET tf_file_count = tf_file_count + 1 WHERE stf_filename = ?`),
    insertSample: db.prepare(`INSERT INTO fastmon_files (tf_file_id, tf_filename, stf_filename, run_number,
      execution_id, namespace, tf_first, tf_last, tf_count, file_size_bytes, status, created_at, updated_at, metadata)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tf_filename) DO NOTHING`),
    sampleSlices: db.prepare(`UPDATE fastmon_files SET slice_count = slice_count + ? WHERE tf_filename = ?`),
    slice: db.prepare<SliceRow>(`SELECT * FROM tf_slices WHERE tf_filename = ?`),
    // id: null lets SQLite number the row (max + 1); the bulk fold numbers them itself, the same way
    insertSlice: db.prepare(`INSERT INTO tf_slices (id, tf_filename, fastmon_file, stf_filename, run_number,
      execution_id, namespace, slice_id, tf_first, tf_last, tf_count, status, attempt, retries, max_retries,
      assigned_worker, assigned_at, lease_deadline, completed_at, last_error, refusals, last_refusal, created_at,
      updated_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    updateSlice: db.prepare(`UPDATE tf_slices SET status = ?, attempt = ?, retries = ?, assigned_worker = ?,
      assigned_at = ?, lease_deadline = ?, completed_at = ?, last_error = ?, refusals = ?, last_refusal = ?,
      updated_at = ?, metadata = ? WHERE id = ?`),
    problem: db.prepare(`INSERT INTO workflow_problems (position, type, execution_id, run_number, namespace, agent,
      reason, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`),
  };

  // ---- executions ---------------------------------------------------------------------------------
  const paramsFor = (executionId: string | null | undefined): ExecutionParams => {
    const fallback = paramsOf(undefined);
    if (!executionId) return fallback;
    let p = executions.get(executionId);
    if (!p) {
      if (bulk) return fallback;
      const row = s.executionParams.get([executionId]);
      if (!row) return fallback;
      p = paramsOf(JSON.parse(row.parameter_values) as unknown);
      executions.set(executionId, p);
    }
    return p;
  };

  // ---- runs ---------------------------------------------------------------------------------------
  const runFor = (run: number, e: ProjectedEvent): RunEntry => {
    let entry = runs.get(run);
    if (!entry) {
      const row = bulk ? undefined : s.runState.get([run]);
      entry = row
        ? {
            run,
            snapshot: JSON.parse(row.snapshot) as FastSnapshot<RunContext>,
            executionId: row.execution_id,
            namespace: row.namespace,
            samples: row.stf_samples_received,
            stateChangedAt: row.state_changed_at,
            updatedAt: row.updated_at,
            finishedAt: row.finished_at,
            metadata: row.metadata,
          }
        : {
            run,
            snapshot: fastRun.initial(),
            executionId: executionIdOf(e) ?? null,
            namespace: namespaceOf(e) ?? null,
            samples: 0,
            stateChangedAt: e.time,
            updatedAt: e.time,
            finishedAt: null,
            metadata: null,
          };
      runs.set(run, entry);
    }
    return entry;
  };

  const stepRun = (entry: RunEntry, event: RunEvent, time: string): boolean => {
    const before = entry.snapshot;
    const after = fastRun.next(before, event);
    entry.updatedAt = time;
    dirtyRuns.add(entry);
    if (after === before) return false;
    if (after.value !== before.value) entry.stateChangedAt = time;
    entry.snapshot = after;
    return after.context.refusals === before.context.refusals;
  };

  const writeRun = (r: RunEntry): void => {
    const c = r.snapshot.context;
    s.upsertRunState.run([
      r.run,
      c.phase,
      c.state,
      c.substate,
      c.target_worker_count,
      c.active_worker_count,
      r.samples,
      c.slices_created,
      c.slices_queued,
      c.slices_processing,
      c.slices_completed,
      c.slices_failed,
      c.slices_retried,
      c.stf_files,
      c.total_stf_files,
      c.refusals,
      isFinished(r.snapshot) ? 1 : 0,
      r.finishedAt,
      r.stateChangedAt,
      r.updatedAt,
      r.executionId,
      r.namespace,
      r.metadata,
      json({ value: r.snapshot.value, context: c }),
    ]);
  };

  // ---- slices -------------------------------------------------------------------------------------
  const sliceFrom = (row: SliceRow): SliceEntry => ({
    id: row.id,
    tfFilename: row.tf_filename,
    fastmonFile: row.fastmon_file,
    stfFilename: row.stf_filename,
    run: row.run_number,
    executionId: row.execution_id,
    namespace: row.namespace,
    sliceId: row.slice_id,
    tfFirst: row.tf_first,
    tfLast: row.tf_last,
    tfCount: row.tf_count,
    snapshot: {
      value: row.status,
      context: {
        attempt: row.attempt,
        retries: row.retries,
        max_retries: row.max_retries,
        // the machine holds the worker only while processing; the row keeps who processed it
        worker: row.status === 'processing' ? row.assigned_worker : null,
        lease_deadline: row.lease_deadline,
        last_error: row.last_error,
        refusals: row.refusals,
        lastRefusal: row.last_refusal === null ? null : (JSON.parse(row.last_refusal) as SliceContext['lastRefusal']),
      },
    },
    assignedWorker: row.assigned_worker,
    assignedAt: row.assigned_at,
    completedAt: row.completed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    metadata: row.metadata,
  });

  /** Slices a batch refers to that have no row (learnt by `prefetch`, valid for that batch). */
  const absent = new Set<string>();
  const PREFETCH = 200;
  const prefetchSlices = db.prepare<SliceRow>(
    `SELECT * FROM tf_slices WHERE tf_filename IN (${Array.from({ length: PREFETCH }, () => '?').join(', ')})`,
  );

  const sliceFor = (tfFilename: string): SliceEntry | undefined => {
    let entry = slices.get(tfFilename);
    if (!entry) {
      if (bulk ? !evicted.delete(tfFilename) : absent.has(tfFilename)) return undefined;
      const row = s.slice.get([tfFilename]);
      if (!row) return undefined;
      entry = sliceFrom(row);
      slices.set(tfFilename, entry);
    }
    return entry;
  };

  const writeSlice = (x: SliceEntry): void => {
    const c = x.snapshot.context;
    const status = x.snapshot.value as string;
    const lastRefusal = c.lastRefusal === null ? null : json(c.lastRefusal);
    if (x.id === undefined) {
      const id = bulk ? nextSliceId++ : null;
      const r = s.insertSlice.run([
        id,
        x.tfFilename,
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
      ]);
      x.id = id ?? Number(r.lastInsertRowid);
    } else {
      s.updateSlice.run([
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
        x.id,
      ]);
    }
  };

  /** Steps a slice; on an accepted step, the run's counters follow. */
  const stepSlice = (x: SliceEntry, event: SliceEvent, e: ProjectedEvent): void => {
    const before = x.snapshot;
    const after = fastSlice.next(before, event);
    x.updatedAt = e.time;
    dirtySlices.set(x.tfFilename, x);
    if (after === before) return;
    x.snapshot = after;
    if (after.context.refusals !== before.context.refusals) return;
    const from = before.value as SliceStatus;
    const to = after.value as SliceStatus;
    if (from === to) return;
    const run = runFor(x.run, e);
    if (from === 'queued' && to === 'processing') {
      x.assignedWorker = after.context.worker;
      x.assignedAt = e.time;
      stepRun(run, { type: 'SLICE_STARTED' }, e.time);
    } else if (from === 'processing' && to === 'completed') {
      x.completedAt = e.time;
      stepRun(run, { type: 'SLICE_SUCCEEDED' }, e.time);
    } else if (from === 'processing' && (to === 'queued' || to === 'failed')) {
      if (to === 'failed') x.completedAt = e.time;
      stepRun(run, { type: 'SLICE_FAILED', final: to === 'failed' }, e.time);
    }
  };

  // ---- per message --------------------------------------------------------------------------------
  const onSlice = (m: Extract<Message, { msg_type: 'slice' }>, e: ProjectedEvent): void => {
    const c = m.content;
    const existing = sliceFor(c.tf_filename);
    const metadata = json({ req_id: c.req_id, slice_processing_time: c.slice_processing_time });
    if (existing) {
      // A retry's new `slice` message: the slice machine already put the slice back in the queue.
      const ctx = existing.snapshot.context;
      if (existing.snapshot.value === 'queued' && ctx.attempt === c.attempt) {
        existing.metadata = metadata;
        existing.updatedAt = e.time;
        dirtySlices.set(existing.tfFilename, existing);
      }
      return;
    }
    if (c.attempt !== 1) return;
    const run = Number(m.run_id);
    const entry: SliceEntry = {
      id: undefined,
      tfFilename: c.tf_filename,
      fastmonFile: c.fastmon_file,
      stfFilename: c.filename,
      run,
      executionId: c.execution_id,
      namespace: m.namespace,
      sliceId: c.slice_id,
      tfFirst: c.start,
      tfLast: c.end,
      tfCount: c.tf_count,
      snapshot: fastSlice.initial({ max_retries: paramsFor(c.execution_id).maxRetries }),
      assignedWorker: null,
      assignedAt: null,
      completedAt: null,
      createdAt: e.time,
      updatedAt: e.time,
      metadata,
    };
    slices.set(entry.tfFilename, entry);
    absent.delete(entry.tfFilename);
    dirtySlices.set(entry.tfFilename, entry);
    sampleSlices.set(c.fastmon_file, (sampleSlices.get(c.fastmon_file) ?? 0) + 1);
    const r = runFor(run, e);
    // One slice at a time (see the file comment); the machine's sample count is not used.
    stepRun(r, { type: 'SAMPLE_REGISTERED', slices: 1 }, e.time);
  };

  const onLifecycle = (m: Message, e: ProjectedEvent): void => {
    const run = Number(m.run_id);
    const r = runFor(run, e);
    const params = paramsFor(m.execution_id);
    const event = runEventOf(
      m,
      params.targetWorkers !== undefined ? { target_worker_count: params.targetWorkers } : {},
    );
    if (!event) return;
    if (m.msg_type === 'run_imminent') {
      r.executionId = m.execution_id;
      r.namespace = m.namespace;
      r.metadata = json({
        execution_id: m.execution_id,
        stf_sampling_rate: params.stfSamplingRate ?? null,
        slices_per_sample: params.slicesPerSample ?? null,
      });
      s.upsertRunStart.run([run, m.execution_id, m.namespace, e.time]);
    }
    const accepted = stepRun(r, event, e.time);
    if (accepted && event.type === 'END_RUN') {
      s.endRun.run([e.time, event.total_stf_files ?? null, run]);
    }
  };

  const onMessage = (m: Message, e: ProjectedEvent): void => {
    switch (m.msg_type) {
      case 'run_imminent':
      case 'start_run':
      case 'stf_gen':
      case 'pause_run':
      case 'resume_run':
        onLifecycle(m, e);
        if (m.msg_type === 'stf_gen') {
          s.insertStf.run([
            e.id,
            m.filename,
            Number(m.run_id),
            m.execution_id,
            m.namespace,
            m.sequence,
            m.state,
            m.state,
            m.substate,
            e.time,
            e.time,
            json({ sequence: m.sequence, created_by: m.sender, substate: m.substate }),
          ]);
        }
        return;
      case 'end_run':
        if (!('content' in m)) onLifecycle(m, e);
        return;
      case 'stf_ready':
        s.stfReady.run([
          e.id,
          m.filename,
          Number(m.run_id),
          m.execution_id,
          m.namespace,
          m.sequence,
          m.state ?? null,
          m.state ?? null,
          m.substate ?? null,
          m.size_bytes,
          m.checksum,
          e.time,
          e.time,
          json({ processed_by: m.processed_by ?? m.sender, updated_at: e.time }),
        ]);
        return;
      case 'tf_file_registered': {
        if (bulk && samples.has(m.tf_filename)) return;
        const inserted = s.insertSample.run([
          e.id,
          m.tf_filename,
          m.stf_filename,
          Number(m.run_id),
          m.execution_id,
          m.namespace,
          m.tf_first,
          m.tf_last,
          m.tf_count,
          m.file_size_bytes,
          m.status ?? 'registered',
          e.time,
          e.time,
          json({ created_from: m.stf_filename, agent_name: m.processed_by ?? m.sender }),
        ]);
        if (bulk) samples.add(m.tf_filename);
        if (bulk || inserted.changes > 0) {
          s.stfSample.run([m.stf_filename]);
          const r = runFor(Number(m.run_id), e);
          r.samples += 1;
          r.updatedAt = e.time;
          dirtyRuns.add(r);
        }
        return;
      }
      case 'slice':
        onSlice(m, e);
        return;
      case 'slice_result': {
        const c = m.content;
        const x = sliceFor(c.tf_filename);
        if (!x) return;
        const reason = c.result?.error ?? undefined;
        stepSlice(
          x,
          c.state === 'done'
            ? { type: 'SUCCEED', attempt: c.attempt }
            : { type: 'FAIL', attempt: c.attempt, ...(reason ? { reason } : {}) },
          e,
        );
        return;
      }
      case 'run_imminent_worker':
      case 'agent_heartbeat':
      case 'agent_log':
        return;
      default: {
        const never: never = m;
        return never;
      }
    }
  };

  const problem = (e: ProjectedEvent, type: string, agent: string | undefined, reason: string): void => {
    s.problem.run([
      e.position,
      type,
      executionIdOf(e) ?? null,
      runNumberOf(e) ?? null,
      namespaceOf(e) ?? null,
      agent ?? null,
      reason,
      e.time,
      json(e.data),
    ]);
  };

  /** The slice file names an event refers to. */
  const sliceNameOf = (e: ProjectedEvent): string | undefined => {
    const p = e.parsed;
    if (!p) return undefined;
    if (p.kind === 'message') {
      const m = p.message;
      return m.msg_type === 'slice' || m.msg_type === 'slice_result' ? m.content.tf_filename : undefined;
    }
    return p.type === 'SliceProcessingStarted' || p.type === 'SliceLeaseExpired' ? p.data.tf_filename : undefined;
  };

  return {
    name: 'workflow',
    prefetch(events) {
      // The bulk fold has every slice in memory but the evicted ones, which `sliceFor` reads back (seldom).
      if (bulk) return;
      absent.clear();
      const wanted = new Set<string>();
      for (const e of events) {
        const name = sliceNameOf(e);
        if (name !== undefined && !slices.has(name)) wanted.add(name);
      }
      const names = [...wanted];
      for (let i = 0; i < names.length; i += PREFETCH) {
        const chunk = names.slice(i, i + PREFETCH);
        const params: (string | null)[] = [...chunk];
        while (params.length < PREFETCH) params.push(null);
        for (const row of prefetchSlices.all(params)) {
          slices.set(row.tf_filename, sliceFrom(row));
          wanted.delete(row.tf_filename);
        }
      }
      for (const name of wanted) absent.add(name);
    },
    apply(e) {
      if (e.invalid !== undefined) {
        problem(e, 'InvalidEvent', undefined, `${e.type} at position ${e.position}: ${e.invalid}`);
        return;
      }
      const p = e.parsed;
      // Types outside our vocabulary (a newer writer's) are ignored.
      if (!p) return;
      if (p.kind === 'message') {
        onMessage(p.message, e);
        return;
      }
      switch (p.type) {
        case 'WorkflowExecutionStarted': {
          const d = p.data;
          s.insertExecution.run([
            d.execution_id,
            d.workflow_name,
            d.namespace,
            json(d.parameter_values),
            d.start_time,
            d.executed_by,
            d.machine_hash,
            json(d.machine_definitions),
            Number(e.position),
          ]);
          executions.set(d.execution_id, paramsOf(d.parameter_values));
          return;
        }
        case 'WorkflowExecutionFinished':
          s.finishExecution.run([p.data.status, p.data.end_time, p.data.reason ?? null, p.data.execution_id]);
          return;
        case 'StopRequested':
          s.stopRequested.run([p.data.requested_at, p.data.execution_id]);
          return;
        case 'RunNumberAllocated':
          s.upsertRunAllocated.run([p.data.run_number, p.data.execution_id, namespaceOf(e) ?? null, e.time]);
          return;
        case 'DatasetOpened':
          s.datasetRun.run([p.data.dataset, Number(p.data.run_id)]);
          return;
        case 'DatasetClosed':
          return;
        case 'SliceProcessingStarted': {
          const x = sliceFor(p.data.tf_filename);
          if (x) {
            stepSlice(
              x,
              { type: 'START', attempt: p.data.attempt, worker: p.data.worker, lease_deadline: p.data.lease_deadline },
              e,
            );
          }
          return;
        }
        case 'SliceLeaseExpired': {
          const x = sliceFor(p.data.tf_filename);
          if (x) stepSlice(x, { type: 'LEASE_EXPIRED', attempt: p.data.attempt }, e);
          return;
        }
        case 'RunFinished': {
          const r = runFor(Number(p.data.run_id), e);
          r.finishedAt = p.data.finished_at;
          r.updatedAt = e.time;
          dirtyRuns.add(r);
          return;
        }
        case 'ExecutionIdAllocated':
          return;
        case 'RunTransitionRefused':
          problem(e, p.type, p.data.agent, `${p.data.msg_type} refused in ${p.data.state}: ${p.data.reason}`);
          return;
        case 'MessageRejected':
          problem(e, p.type, p.data.agent, `${p.data.original_type} rejected: ${p.data.reason}`);
          return;
        case 'BrokerMessageRejected':
          problem(e, p.type, 'gateway', `${p.data.destination} frame ${p.data.message_id} rejected: ${p.data.reason}`);
          return;
        default: {
          const never: never = p;
          return never;
        }
      }
    },
    flush() {
      for (const [sample, n] of sampleSlices) s.sampleSlices.run([n, sample]);
      sampleSlices.clear();
      for (const x of dirtySlices.values()) {
        writeSlice(x);
        // Final slices take no more events (a late one is refused): keep only live ones in memory.
        if (x.snapshot.value === 'completed' || x.snapshot.value === 'failed') {
          slices.delete(x.tfFilename);
          if (bulk) evicted.add(x.tfFilename);
        }
      }
      dirtySlices.clear();
      for (const r of dirtyRuns) writeRun(r);
      dirtyRuns.clear();
      if (slices.size > 200_000) {
        if (bulk) for (const name of slices.keys()) evicted.add(name);
        slices.clear();
      }
    },
    full: () => evicted.size > maxEvicted,
    reset() {
      if (bulk) throw new Error('a bulk fold cannot start again: its tables are no longer empty');
      absent.clear();
      executions.clear();
      runs.clear();
      dirtyRuns.clear();
      slices.clear();
      dirtySlices.clear();
      sampleSlices.clear();
    },
  };
}
