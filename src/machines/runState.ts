/**
 * The RunState rule (DESIGN.md semantics 7), one for every reader of the log: the fast processing agent, the
 * workflow projection and time travel all fold a run with `runStateStep`.
 *
 * The RunState at log position P is what the log holds up to P:
 * - a TF sample counts as received at its `tf_file_registered`;
 * - a slice counts as created (and queued) at its first `slice` message; a later one for it — a retry's, or the same
 *   message sent again, also after the slice is final — does not count it again;
 * - it counts as processing, completed, failed or queued again at the events that put it there
 *   (`SliceProcessingStarted`, `slice_result`, `SliceLeaseExpired`), as the slice machine decides them: a result
 *   after the slice is final (completed or failed for good) is refused and counts nothing (`swf conformance` lists
 *   both as rule breaks: `slice-repeated`, `result-after-final`);
 * - the lifecycle follows the DAQ's messages (`runEventOf`).
 * Never at the moment an agent decided to produce those events.
 */
import type { Effect, FastSnapshot, CompiledMachine } from './fastPath.js';
import { refusalOf } from './logic.js';
import { fastRun, fastSlice } from './registry.js';
import { type LifecycleBody, type RunContext, type RunEvent, runEventOf, RUN_LIFECYCLE_EVENTS } from './run.js';
import {
  DEFAULT_MAX_SLICE_RETRIES,
  isFinalSliceStatus,
  type SliceContext,
  type SliceEvent,
  type SliceInput,
} from './slice.js';

/** A stored event as the rule reads it: a parsed message or domain event (structural: any parsed event fits). */
export type RunStateInput =
  { kind: 'message'; message: LifecycleBody } | { kind: 'domain'; type: string; data: unknown };

/** The event types the rule reads (everything else leaves RunState as it is). */
export const RUN_STATE_EVENT_TYPES: ReadonlySet<string> = new Set([
  'WorkflowExecutionStarted',
  'run_imminent',
  'start_run',
  'stf_gen',
  'pause_run',
  'resume_run',
  'end_run',
  'tf_file_registered',
  'slice',
  'SliceProcessingStarted',
  'slice_result',
  'SliceLeaseExpired',
]);

/** The machines a reader folds with: today's, or the ones a run recorded. */
export interface RunStateMachines {
  run: CompiledMachine<RunContext, RunEvent>;
  slice: CompiledMachine<SliceContext, SliceEvent, SliceInput>;
}

export const TODAYS_MACHINES: RunStateMachines = { run: fastRun, slice: fastSlice };

/** What the rule needs of an execution's configuration (`[fast_processing]`). */
export interface RunStateParams {
  max_slice_retries: number;
  target_worker_count?: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;

/** The rule's parameters from an execution's `parameter_values` (defaults for what is missing). */
export function runStateParamsOf(parameterValues: unknown): RunStateParams {
  const fp =
    isRecord(parameterValues) && isRecord(parameterValues.fast_processing) ? parameterValues.fast_processing : {};
  const target = count(fp.target_worker_count);
  return {
    max_slice_retries: count(fp.max_slice_retries) ?? DEFAULT_MAX_SLICE_RETRIES,
    ...(target !== undefined ? { target_worker_count: target } : {}),
  };
}

interface SliceFields {
  tf_filename?: unknown;
  attempt?: unknown;
  state?: unknown;
  result?: { error?: unknown } | null;
  worker?: unknown;
  lease_deadline?: unknown;
  run_id?: unknown;
}

const sliceContent = (m: LifecycleBody): SliceFields => (isRecord(m.content) ? m.content : {});
const domainData = (p: { data: unknown }): SliceFields => (isRecord(p.data) ? p.data : {});
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The slice an event is about (the slice's own file name), if any. */
export function sliceNameOf(p: RunStateInput): string | undefined {
  if (p.kind === 'message') {
    const t = p.message.msg_type;
    return t === 'slice' || t === 'slice_result' ? text(sliceContent(p.message).tf_filename) : undefined;
  }
  return p.type === 'SliceProcessingStarted' || p.type === 'SliceLeaseExpired'
    ? text(domainData(p).tf_filename)
    : undefined;
}

/** The run an event is about (`run_id`, of the body or the slice content). */
export function runIdOf(p: RunStateInput): string | undefined {
  if (p.kind === 'message') return text(p.message.run_id) ?? text(sliceContent(p.message).run_id);
  return text(domainData(p).run_id);
}

/** How one event moved the slice it names. */
export interface SliceStep {
  /** undefined: the event created the slice. */
  before: FastSnapshot<SliceContext> | undefined;
  /** The slice's snapshot after (a refused step records the refusal in it). */
  after: FastSnapshot<SliceContext>;
  effects: readonly Effect[];
  refused: boolean;
}

/** What one stored event does: to the slice it names, and to its run (the run machine's input). */
export interface RunStateStep {
  slice?: SliceStep;
  run?: RunEvent;
}

const NOTHING: RunStateStep = Object.freeze({});
const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

// The run's inputs for slice steps: one object each (every slice event of a run makes one; none is changed).
const SLICE_CREATED: RunEvent = Object.freeze({ type: 'SLICE_CREATED' });
const SLICE_STARTED: RunEvent = Object.freeze({ type: 'SLICE_STARTED' });
const SLICE_SUCCEEDED: RunEvent = Object.freeze({ type: 'SLICE_SUCCEEDED' });
const SLICE_RETRIED: RunEvent = Object.freeze({ type: 'SLICE_FAILED', final: false });
const SLICE_FAILED: RunEvent = Object.freeze({ type: 'SLICE_FAILED', final: true });
const SAMPLE_REGISTERED: RunEvent = Object.freeze({ type: 'SAMPLE_REGISTERED', slices: 0 });

/** The run's input for an accepted slice step, from the slice's status before and after. */
function runEventOfSlice(from: string, to: string): RunEvent | undefined {
  if (from === to) return undefined;
  if (from === 'queued' && to === 'processing') return SLICE_STARTED;
  if (from === 'processing' && to === 'completed') return SLICE_SUCCEEDED;
  if (from === 'processing' && to === 'queued') return SLICE_RETRIED;
  if (from === 'processing' && to === 'failed') return SLICE_FAILED;
  return undefined;
}

function stepSlice(machines: RunStateMachines, before: FastSnapshot<SliceContext>, event: SliceEvent): RunStateStep {
  const [after, effects] = machines.slice.transition(before, event);
  if (after === before) return NOTHING;
  const slice = { before, after, effects, refused: refusalOf(before, after) !== undefined };
  if (slice.refused) return { slice };
  const m = machines.slice;
  const run = runEventOfSlice(m.keyOf(before.value), m.keyOf(after.value));
  return run === undefined ? { slice } : { slice, run };
}

/**
 * The RunState rule for one stored event. `slice` is the snapshot of the slice the event names
 * (`sliceNameOf`), undefined when the log has not created it; `params` the run's execution's. The caller keeps
 * the slice's new snapshot (`step.slice.after`) and steps its run with `step.run`.
 */
export function runStateStep(
  p: RunStateInput,
  slice: FastSnapshot<SliceContext> | undefined,
  params: RunStateParams,
  machines: RunStateMachines = TODAYS_MACHINES,
): RunStateStep {
  if (p.kind === 'domain') {
    if (slice === undefined) return NOTHING;
    const d = domainData(p);
    const attempt = d.attempt as number;
    if (p.type === 'SliceProcessingStarted') {
      const leaseDeadline = text(d.lease_deadline) ?? null;
      return stepSlice(machines, slice, {
        type: 'START',
        attempt,
        worker: text(d.worker) ?? 'unknown',
        lease_deadline: leaseDeadline,
      });
    }
    if (p.type === 'SliceLeaseExpired') return stepSlice(machines, slice, { type: 'LEASE_EXPIRED', attempt });
    return NOTHING;
  }
  const m = p.message;
  switch (m.msg_type) {
    case 'slice': {
      // A retry's message finds the slice already queued again by its machine.
      if (slice !== undefined || sliceContent(m).attempt !== 1) return NOTHING;
      const after = machines.slice.initial({ max_retries: params.max_slice_retries });
      return { slice: { before: undefined, after, effects: NO_EFFECTS, refused: false }, run: SLICE_CREATED };
    }
    case 'slice_result': {
      if (slice === undefined) return NOTHING;
      const c = sliceContent(m);
      const attempt = c.attempt as number;
      const error = text(c.result?.error);
      return stepSlice(
        machines,
        slice,
        c.state === 'done'
          ? { type: 'SUCCEED', attempt }
          : // a failure without error text still says where it came from
            { type: 'FAIL', attempt, reason: error !== undefined && error !== '' ? error : 'payload failed' },
      );
    }
    case 'tf_file_registered':
      return { run: SAMPLE_REGISTERED };
    default: {
      const run = runEventOf(
        m,
        m.msg_type === 'run_imminent' && params.target_worker_count !== undefined
          ? { target_worker_count: params.target_worker_count }
          : {},
      );
      return run ? { run } : NOTHING;
    }
  }
}

/**
 * RunState folded from a log: the runs and the slices, in memory. Time travel reads a run through it; the agent and
 * the projection keep their own stores (and more per slice) but step with `runStateStep` too.
 *
 * A live slice is kept as its machine snapshot; a final one (completed, or failed for good) only by name when the
 * fold uses today's machines, whose final states refuse every slice event: a later event naming it steps nothing
 * (a `slice` message is not its first, a result or start is refused), so its snapshot is not needed to know that.
 */
export class RunStateFold {
  private readonly runs = new Map<string, FastSnapshot<RunContext>>();
  private readonly slices = new Map<string, FastSnapshot<SliceContext>>();
  /** Final slices, by name only (today's machines; see above). */
  private readonly finalSlices = new Set<string>();
  private readonly compactFinal: boolean;
  private readonly params = new Map<string, RunStateParams>();

  constructor(
    private readonly machines: RunStateMachines = TODAYS_MACHINES,
    /** Told of every run transition taken (refusals aside), e.g. for the Stately inspector. */
    private readonly onRunTransition?: (runId: string, event: RunEvent, snapshot: FastSnapshot<RunContext>) => void,
  ) {
    this.compactFinal = machines === TODAYS_MACHINES;
  }

  /** Slices held as snapshots, and final slices held by name only. */
  get sliceCounts(): { live: number; final: number } {
    return { live: this.slices.size, final: this.finalSlices.size };
  }

  apply(p: RunStateInput): void {
    if (p.kind === 'domain' && p.type === 'WorkflowExecutionStarted') {
      const d = isRecord(p.data) ? p.data : {};
      if (typeof d.execution_id === 'string') this.params.set(d.execution_id, runStateParamsOf(d.parameter_values));
      return;
    }
    const runId = runIdOf(p);
    if (runId === undefined) return;
    const name = sliceNameOf(p);
    // an event naming a final slice steps nothing (see the class)
    if (name !== undefined && this.finalSlices.has(name)) return;
    const executionId = p.kind === 'message' ? text(p.message.execution_id) : undefined;
    const params = (executionId !== undefined ? this.params.get(executionId) : undefined) ?? DEFAULT_PARAMS;
    const step = runStateStep(p, name === undefined ? undefined : this.slices.get(name), params, this.machines);
    // A final slice is kept (by name only, with today's machines): the log has created it, so a later `slice`
    // message for it is not its first (it does not count it again) and a result after its final state is refused by
    // the slice machine, as in every reader.
    if (step.slice && name !== undefined && !step.slice.refused) {
      const after = step.slice.after;
      if (this.compactFinal && isFinalSliceStatus(this.machines.slice.keyOf(after.value))) {
        this.slices.delete(name);
        this.finalSlices.add(name);
      } else this.slices.set(name, after);
    }
    if (step.run) {
      let run = this.runs.get(runId);
      // a run begins with a lifecycle message (refused or not); progress of a run not begun is not counted
      if (run === undefined) {
        if (!isLifecycle(step.run)) return;
        run = this.machines.run.initial();
      }
      const after = this.machines.run.next(run, step.run);
      this.runs.set(runId, after);
      if (refusalOf(run, after) === undefined) this.onRunTransition?.(runId, step.run, after);
    }
  }

  /** A run's machine snapshot, if the log has begun it. */
  run(runId: string): FastSnapshot<RunContext> | undefined {
    return this.runs.get(runId);
  }
}

const DEFAULT_PARAMS = runStateParamsOf(undefined);

/** A lifecycle input (from the DAQ's messages), as opposed to sample and slice progress. */
export const isLifecycle = (e: RunEvent): boolean => (RUN_LIFECYCLE_EVENTS as readonly string[]).includes(e.type);
