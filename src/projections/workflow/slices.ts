/**
 * `tf_slices`: each slice folded by the RunState rule (`runStateStep`, with the slice machine and the execution's
 * `max_slice_retries`). A slice is created, and counted into its run's RunState, by its first `slice` message; each
 * accepted step of the slice steps the run, so the slice rows and the counters agree at every log position.
 */
import { runStateStep, sliceNameOf } from '../../machines/runState.js';
import { NO_WRITES, type ProjectedEvent, type ProjectionPart, type Write } from '../projection.js';
import { runFor, stepRun } from './runs.js';
import { json, paramsFor, type WorkflowState } from './state.js';

/**
 * A slice row's `metadata`: `JSON.stringify({ req_id, slice_processing_time })`, written out for the usual string and
 * finite number (the same text, without an object and a generic walk per slice).
 */
export function sliceMetadata(reqId: unknown, processingTime: unknown): string {
  if (typeof reqId === 'string' && typeof processingTime === 'number' && Number.isFinite(processingTime)) {
    return `{"req_id":${JSON.stringify(reqId)},"slice_processing_time":${processingTime}}`;
  }
  return json({ req_id: reqId, slice_processing_time: processingTime });
}

export function evolveSlices(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const p = e.parsed;
  if (!p) return NO_WRITES;
  const name = sliceNameOf(p);
  if (name === undefined) return NO_WRITES;
  const x = state.slices.get(name);
  // Every event naming a known slice joins its history (refused ones too): the slice page reads them by position.
  // (the position as a number: a BigInt's decimal text costs some three times as much to make)
  if (x) x.eventPositions = `${x.eventPositions},${Number(e.position)}`;
  if (x && p.kind === 'message' && p.message.msg_type === 'slice') {
    // A retry's new `slice` message: the slice machine already put the slice back in the queue.
    const c = p.message.content;
    if (x.snapshot.value === 'queued' && x.snapshot.context.attempt === c.attempt) {
      x.metadata = sliceMetadata(c.req_id, c.slice_processing_time);
      x.updatedAt = e.time;
    }
    state.slices.put(name, x);
    return NO_WRITES;
  }
  const executionId = p.kind === 'message' ? p.message.execution_id : undefined;
  const step = runStateStep(p, x?.snapshot, { max_slice_retries: paramsFor(state, executionId).maxRetries });
  if (!step.slice) {
    if (x) state.slices.put(name, x);
    return NO_WRITES;
  }
  const { after } = step.slice;
  let run: number;
  if (x) {
    const before = x.snapshot.value;
    x.snapshot = after;
    x.updatedAt = e.time;
    if (before === 'queued' && after.value === 'processing') {
      x.assignedWorker = after.context.worker;
      x.assignedAt = e.time;
    } else if (before === 'processing' && (after.value === 'completed' || after.value === 'failed')) {
      x.completedAt = e.time;
    }
    state.slices.put(name, x);
    run = x.run;
  } else {
    if (p.kind !== 'message' || p.message.msg_type !== 'slice') return NO_WRITES;
    const m = p.message;
    const c = m.content;
    run = Number(m.run_id);
    state.slices.put(name, {
      fastmonFile: c.fastmon_file,
      stfFilename: c.filename,
      run,
      executionId: c.execution_id,
      namespace: m.namespace,
      sliceId: c.slice_id,
      tfFirst: c.start,
      tfLast: c.end,
      tfCount: c.tf_count,
      snapshot: after,
      assignedWorker: null,
      assignedAt: null,
      completedAt: null,
      createdAt: e.time,
      updatedAt: e.time,
      metadata: sliceMetadata(c.req_id, c.slice_processing_time),
      eventPositions: String(Number(e.position)),
    });
    const sample = state.samples.get(c.fastmon_file);
    if (sample) {
      sample.sliceCount += 1;
      state.samples.put(c.fastmon_file, sample);
    }
  }
  if (step.run) stepRun(state, run, runFor(state, run, e), step.run, e.time);
  return NO_WRITES;
}

export const slicesPart = {
  evolve: evolveSlices,
  messages: ['slice', 'slice_result'],
  domainEvents: ['SliceProcessingStarted', 'SliceLeaseExpired'],
} as const satisfies ProjectionPart<WorkflowState>;
