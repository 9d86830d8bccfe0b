/**
 * `runs` and `run_states`: a run's allocation, start, end and dataset, and its RunState, folded through the run
 * machine (`fastRun`) so the view applies exactly the rules the agents do.
 */
import { fastRun } from '../../machines/registry.js';
import type { RunEvent } from '../../machines/run.js';
import { runStateStep } from '../../machines/runState.js';
import type { Message } from '../../messages/schemas.js';
import {
  executionIdOf,
  namespaceOf,
  NO_WRITES,
  type ProjectedEvent,
  type ProjectionPart,
  type Write,
} from '../projection.js';
import { json, paramsFor, type RunEntry, type WorkflowState } from './state.js';

const ALLOCATED = `INSERT INTO runs (run_number, execution_id, namespace, allocated_at, run_conditions)
  VALUES (?, ?, ?, ?, '{}') ON CONFLICT (run_number) DO UPDATE SET execution_id = excluded.execution_id,
  namespace = coalesce(runs.namespace, excluded.namespace), allocated_at = excluded.allocated_at`;
const STARTED = `INSERT INTO runs (run_number, execution_id, namespace, start_time, run_conditions)
  VALUES (?, ?, ?, ?, '{}') ON CONFLICT (run_number) DO UPDATE SET
  execution_id = coalesce(runs.execution_id, excluded.execution_id), namespace = excluded.namespace,
  start_time = coalesce(runs.start_time, excluded.start_time)`;
const ENDED = `UPDATE runs SET end_time = coalesce(end_time, ?), total_stf_files = ? WHERE run_number = ?`;
const DATASET = `UPDATE runs SET dataset = ? WHERE run_number = ?`;

/** The run's entry, new (as of `e`) if the run has none. */
export function runFor(state: WorkflowState, run: number, e: ProjectedEvent): RunEntry {
  let entry = state.runs.get(run);
  if (!entry) {
    entry = {
      snapshot: fastRun.initial(),
      executionId: executionIdOf(e) ?? null,
      namespace: namespaceOf(e) ?? null,
      stateChangedAt: e.time,
      updatedAt: e.time,
      finishedAt: null,
      metadata: null,
    };
    state.runs.put(run, entry);
  }
  return entry;
}

/** Steps the run machine; true when the step was taken (not refused, not ignored). */
export function stepRun(state: WorkflowState, run: number, entry: RunEntry, event: RunEvent, time: string): boolean {
  const before = entry.snapshot;
  const after = fastRun.next(before, event);
  entry.updatedAt = time;
  state.runs.put(run, entry);
  if (after === before) return false;
  if (after.value !== before.value) entry.stateChangedAt = time;
  entry.snapshot = after;
  return after.context.refusals === before.context.refusals;
}

function onLifecycle(m: Message, e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const run = Number(m.run_id);
  const r = runFor(state, run, e);
  const params = paramsFor(state, m.execution_id);
  const event = runStateStep({ kind: 'message', message: m }, undefined, {
    max_slice_retries: params.maxRetries,
    ...(params.targetWorkers !== undefined ? { target_worker_count: params.targetWorkers } : {}),
  }).run;
  if (!event) return NO_WRITES;
  const writes: Write[] = [];
  if (m.msg_type === 'run_imminent') {
    r.executionId = m.execution_id;
    r.namespace = m.namespace;
    r.metadata = json({
      execution_id: m.execution_id,
      stf_sampling_rate: params.stfSamplingRate ?? null,
      slices_per_sample: params.slicesPerSample ?? null,
    });
    writes.push({ sql: STARTED, params: [run, m.execution_id, m.namespace, e.time] });
  }
  const accepted = stepRun(state, run, r, event, e.time);
  if (accepted && event.type === 'END_RUN') {
    writes.push({ sql: ENDED, params: [e.time, event.total_stf_files ?? null, run] });
  }
  return writes;
}

export function evolveRuns(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const p = e.parsed;
  if (!p) return NO_WRITES;
  if (p.kind === 'message') {
    const m = p.message;
    switch (m.msg_type) {
      case 'run_imminent':
      case 'start_run':
      case 'stf_gen':
      case 'pause_run':
      case 'resume_run':
        return onLifecycle(m, e, state);
      case 'end_run':
        // the worker-side end_run (with `content`) is a broadcast, not a lifecycle step
        return 'content' in m ? NO_WRITES : onLifecycle(m, e, state);
      default:
        return NO_WRITES;
    }
  }
  switch (p.type) {
    case 'RunNumberAllocated':
      return [{ sql: ALLOCATED, params: [p.data.run_number, p.data.execution_id, namespaceOf(e) ?? null, e.time] }];
    case 'DatasetOpened':
      return [{ sql: DATASET, params: [p.data.dataset, Number(p.data.run_id)] }];
    case 'RunFinished': {
      const run = Number(p.data.run_id);
      const r = runFor(state, run, e);
      r.finishedAt = p.data.finished_at;
      r.updatedAt = e.time;
      state.runs.put(run, r);
      return NO_WRITES;
    }
    default:
      return NO_WRITES;
  }
}

export const runsPart = {
  evolve: evolveRuns,
  messages: ['run_imminent', 'start_run', 'stf_gen', 'pause_run', 'resume_run', 'end_run'],
  domainEvents: ['RunNumberAllocated', 'DatasetOpened', 'RunFinished'],
} as const satisfies ProjectionPart<WorkflowState>;
