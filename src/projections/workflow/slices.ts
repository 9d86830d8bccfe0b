/**
 * `tf_slices`: each slice folded through the slice machine (`fastSlice`, with the execution's
 * `max_slice_retries`). A slice is counted into its run's RunState as its first `slice` message arrives, and each
 * accepted step of the slice steps the run, so the slice rows and the counters agree at every log position.
 */
import { fastSlice } from '../../machines/registry.js';
import type { SliceEvent, SliceStatus } from '../../machines/slice.js';
import type { Message } from '../../messages/schemas.js';
import { NO_WRITES, type ProjectedEvent, type Write } from '../projection.js';
import { runFor, stepRun } from './runs.js';
import { json, paramsFor, type SliceEntry, type WorkflowState } from './state.js';

/** Steps a slice; on an accepted step, the run's counters follow. */
function stepSlice(state: WorkflowState, name: string, x: SliceEntry, event: SliceEvent, e: ProjectedEvent): void {
  const before = x.snapshot;
  const after = fastSlice.next(before, event);
  x.updatedAt = e.time;
  state.slices.put(name, x);
  if (after === before) return;
  x.snapshot = after;
  if (after.context.refusals !== before.context.refusals) return;
  const from = before.value as SliceStatus;
  const to = after.value as SliceStatus;
  if (from === to) return;
  const run = runFor(state, x.run, e);
  if (from === 'queued' && to === 'processing') {
    x.assignedWorker = after.context.worker;
    x.assignedAt = e.time;
    stepRun(state, x.run, run, { type: 'SLICE_STARTED' }, e.time);
  } else if (from === 'processing' && to === 'completed') {
    x.completedAt = e.time;
    stepRun(state, x.run, run, { type: 'SLICE_SUCCEEDED' }, e.time);
  } else if (from === 'processing' && (to === 'queued' || to === 'failed')) {
    if (to === 'failed') x.completedAt = e.time;
    stepRun(state, x.run, run, { type: 'SLICE_FAILED', final: to === 'failed' }, e.time);
  }
}

function onSlice(m: Extract<Message, { msg_type: 'slice' }>, e: ProjectedEvent, state: WorkflowState): void {
  const c = m.content;
  const existing = state.slices.get(c.tf_filename);
  const metadata = json({ req_id: c.req_id, slice_processing_time: c.slice_processing_time });
  if (existing) {
    // A retry's new `slice` message: the slice machine already put the slice back in the queue.
    if (existing.snapshot.value === 'queued' && existing.snapshot.context.attempt === c.attempt) {
      existing.metadata = metadata;
      existing.updatedAt = e.time;
      state.slices.put(c.tf_filename, existing);
    }
    return;
  }
  if (c.attempt !== 1) return;
  const run = Number(m.run_id);
  state.slices.put(c.tf_filename, {
    fastmonFile: c.fastmon_file,
    stfFilename: c.filename,
    run,
    executionId: c.execution_id,
    namespace: m.namespace,
    sliceId: c.slice_id,
    tfFirst: c.start,
    tfLast: c.end,
    tfCount: c.tf_count,
    snapshot: fastSlice.initial({ max_retries: paramsFor(state, c.execution_id).maxRetries }),
    assignedWorker: null,
    assignedAt: null,
    completedAt: null,
    createdAt: e.time,
    updatedAt: e.time,
    metadata,
  });
  const sample = state.samples.get(c.fastmon_file);
  if (sample) {
    sample.sliceCount += 1;
    state.samples.put(c.fastmon_file, sample);
  }
  // One slice at a time (see the file comment); the machine's sample count is not used.
  stepRun(state, run, runFor(state, run, e), { type: 'SAMPLE_REGISTERED', slices: 1 }, e.time);
}

export function evolveSlices(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const p = e.parsed;
  if (!p) return NO_WRITES;
  if (p.kind === 'message') {
    const m = p.message;
    if (m.msg_type === 'slice') onSlice(m, e, state);
    else if (m.msg_type === 'slice_result') {
      const c = m.content;
      const x = state.slices.get(c.tf_filename);
      if (!x) return NO_WRITES;
      const reason = c.result?.error ?? undefined;
      stepSlice(
        state,
        c.tf_filename,
        x,
        c.state === 'done'
          ? { type: 'SUCCEED', attempt: c.attempt }
          : { type: 'FAIL', attempt: c.attempt, ...(reason ? { reason } : {}) },
        e,
      );
    }
    return NO_WRITES;
  }
  if (p.type === 'SliceProcessingStarted') {
    const d = p.data;
    const x = state.slices.get(d.tf_filename);
    if (x) {
      const start = { type: 'START', attempt: d.attempt, worker: d.worker, lease_deadline: d.lease_deadline } as const;
      stepSlice(state, d.tf_filename, x, start, e);
    }
  } else if (p.type === 'SliceLeaseExpired') {
    const x = state.slices.get(p.data.tf_filename);
    if (x) stepSlice(state, p.data.tf_filename, x, { type: 'LEASE_EXPIRED', attempt: p.data.attempt }, e);
  }
  return NO_WRITES;
}
