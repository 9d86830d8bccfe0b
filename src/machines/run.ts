/**
 * The run machine: the RunState of one run (DESIGN.md semantics 7; testbed-facts §3.1).
 *
 * `initializing → imminent → physics ↔ standby → completed`, driven by the DAQ's lifecycle messages. A lifecycle
 * message that is illegal where the run stands is refused: the state does not change and the reason is recorded
 * in `context.lastRefusal` (see `refusalOf`). Sample and slice progress is counted in every state after
 * `run_imminent`, also after `end_run`: the queue drains after data taking ends. The run is finished when its
 * phase is `completed` and every slice is final (`isFinished`).
 */
import { setup } from 'xstate';
import {
  assignActions,
  guardPredicates,
  refusals,
  refuse,
  type Guard,
  type MachineLogic,
  type RefusalRecord,
  type Update,
} from './logic.js';

export const RUN_PHASES = ['initializing', 'imminent', 'physics', 'standby', 'completed'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** RunState, with the testbed's field names, plus what the agents need to decide. */
export interface RunContext extends RefusalRecord {
  run_id: string | null;
  execution_id: string | null;
  /** Mirrors the machine's state. */
  phase: RunPhase;
  /** The E0-E1 stamp of the last lifecycle message (`ended`/null after end_run, as the testbed monitor writes). */
  state: string;
  substate: string | null;
  target_worker_count: number;
  /** Workers holding a lease (a worker holds one slice at a time). */
  active_worker_count: number;
  stf_samples_received: number;
  slices_created: number;
  slices_queued: number;
  slices_processing: number;
  slices_completed: number;
  /** Final failures only. */
  slices_failed: number;
  /** Failed attempts that went back to the queue. */
  slices_retried: number;
  /** stf_gen messages accepted. */
  stf_files: number;
  /** From end_run. */
  total_stf_files: number | null;
}

/** The DAQ's E0-E1 stamp, as carried by the lifecycle messages (defaults per message when absent). */
export interface RunStamp {
  state?: string;
  substate?: string | null;
}

export type RunEvent =
  | ({ type: 'RUN_IMMINENT'; run_id: string; execution_id?: string; target_worker_count?: number } & RunStamp)
  | ({ type: 'START_RUN' } & RunStamp)
  | ({ type: 'STF_GEN' } & RunStamp)
  | ({ type: 'PAUSE_RUN' } & RunStamp)
  | ({ type: 'RESUME_RUN' } & RunStamp)
  | { type: 'END_RUN'; total_stf_files?: number }
  /**
   * A TF sample was registered (`tf_file_registered`). `slices` counts slices created with it: the RunState rule
   * (`runState.ts`) gives 0 and counts each slice by its own `SLICE_CREATED`; a positive count is for definitions
   * recorded before that rule.
   */
  | { type: 'SAMPLE_REGISTERED'; slices: number }
  /** A slice's first `slice` message: created and queued. */
  | { type: 'SLICE_CREATED' }
  /** A worker took a queued slice. */
  | { type: 'SLICE_STARTED' }
  | { type: 'SLICE_SUCCEEDED' }
  /** A processing attempt failed (a failed result or an expired lease); `final` when no retry is left. */
  | { type: 'SLICE_FAILED'; final: boolean };

export type RunEventType = RunEvent['type'];
export const RUN_LIFECYCLE_EVENTS = [
  'RUN_IMMINENT',
  'START_RUN',
  'STF_GEN',
  'PAUSE_RUN',
  'RESUME_RUN',
  'END_RUN',
] as const;
export const RUN_PROGRESS_EVENTS = [
  'SAMPLE_REGISTERED',
  'SLICE_CREATED',
  'SLICE_STARTED',
  'SLICE_SUCCEEDED',
  'SLICE_FAILED',
] as const;

/** RunState's fields (DESIGN.md semantics 7; the testbed's names): what every reader of a run shows. */
export const RUN_STATE_FIELDS = [
  'phase',
  'state',
  'substate',
  'target_worker_count',
  'active_worker_count',
  'stf_samples_received',
  'slices_created',
  'slices_queued',
  'slices_processing',
  'slices_completed',
  'slices_failed',
  'slices_retried',
  'stf_files',
  'total_stf_files',
] as const satisfies readonly (keyof RunContext)[];

export type RunState = Pick<RunContext, (typeof RUN_STATE_FIELDS)[number]>;

/** The RunState fields of a run machine's context. */
export function runStateOf(c: RunContext): RunState {
  const out: Partial<Record<keyof RunState, unknown>> = {};
  for (const f of RUN_STATE_FIELDS) out[f] = c[f];
  return out as RunState;
}

export const initialRunContext: RunContext = Object.freeze({
  run_id: null,
  execution_id: null,
  phase: 'initializing',
  state: 'imminent',
  substate: 'preparing',
  target_worker_count: 0,
  active_worker_count: 0,
  stf_samples_received: 0,
  slices_created: 0,
  slices_queued: 0,
  slices_processing: 0,
  slices_completed: 0,
  slices_failed: 0,
  slices_retried: 0,
  stf_files: 0,
  total_stf_files: null,
  refusals: 0,
  lastRefusal: null,
});

const stamp = (event: RunEvent, state: string, substate: string | null): { state: string; substate: string | null } => {
  const s = event as RunStamp;
  return { state: s.state ?? state, substate: s.substate === undefined ? substate : s.substate };
};

type RunUpdate<P = undefined> = Update<RunContext, RunEvent, P>;
type RunGuard = Guard<RunContext, RunEvent>;

const recordImminent: RunUpdate = (c, e) => {
  const ev = e as Extract<RunEvent, { type: 'RUN_IMMINENT' }>;
  return {
    phase: 'imminent',
    run_id: ev.run_id,
    execution_id: ev.execution_id ?? c.execution_id,
    target_worker_count: ev.target_worker_count ?? c.target_worker_count,
    ...stamp(e, 'beam', 'not_ready'),
  };
};

/** The run's context updates, shared by `setup()` and the fast path. */
export const runUpdates = {
  recordImminent,
  recordStart: ((_c, e) => ({ phase: 'physics', ...stamp(e, 'run', 'physics') })) as RunUpdate,
  recordStf: ((c, e) => ({ stf_files: c.stf_files + 1, ...stamp(e, 'run', 'physics') })) as RunUpdate,
  recordPause: ((_c, e) => ({ phase: 'standby', ...stamp(e, 'run', 'standby') })) as RunUpdate,
  recordResume: ((_c, e) => ({ phase: 'physics', ...stamp(e, 'run', 'physics') })) as RunUpdate,
  recordEnd: ((c, e) => {
    const total = (e as { total_stf_files?: number }).total_stf_files;
    return { phase: 'completed', state: 'ended', substate: null, total_stf_files: total ?? c.total_stf_files };
  }) as RunUpdate,
  countSample: ((c, e) => {
    const n = (e as { slices: number }).slices;
    return {
      stf_samples_received: c.stf_samples_received + 1,
      slices_created: c.slices_created + n,
      slices_queued: c.slices_queued + n,
    };
  }) as RunUpdate,
  countSliceCreated: ((c) => ({
    slices_created: c.slices_created + 1,
    slices_queued: c.slices_queued + 1,
  })) as RunUpdate,
  countSliceStarted: ((c) => ({
    slices_queued: c.slices_queued - 1,
    slices_processing: c.slices_processing + 1,
    active_worker_count: c.active_worker_count + 1,
  })) as RunUpdate,
  countSliceSucceeded: ((c) => ({
    slices_processing: c.slices_processing - 1,
    slices_completed: c.slices_completed + 1,
    active_worker_count: c.active_worker_count - 1,
  })) as RunUpdate,
  countSliceFailed: ((c, e) =>
    (e as { final: boolean }).final
      ? {
          slices_processing: c.slices_processing - 1,
          slices_failed: c.slices_failed + 1,
          active_worker_count: c.active_worker_count - 1,
        }
      : {
          slices_processing: c.slices_processing - 1,
          slices_queued: c.slices_queued + 1,
          slices_retried: c.slices_retried + 1,
          active_worker_count: c.active_worker_count - 1,
        }) as RunUpdate,
  refuse: refuse<RunContext, RunEvent>,
  /** A refusal declared for every state: the state is the run's phase. */
  refuseInPhase: ((c, e, params: { reason: string }) => ({
    refusals: c.refusals + 1,
    lastRefusal: { event: e.type, state: c.phase, reason: params.reason },
  })) as RunUpdate<{ reason: string }>,
};

const refuseInPhase = (reason: string) => ({ actions: { type: 'refuseInPhase' as const, params: { reason } } });

/** The run's guards, shared by `setup()` and the fast path. */
export const runGuards = {
  isSliceCount: ((_c, e) => {
    const n = (e as { slices?: unknown }).slices;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  }) as RunGuard,
  hasQueuedSlice: ((c) => c.slices_queued > 0) as RunGuard,
  hasProcessingSlice: ((c) => c.slices_processing > 0) as RunGuard,
};

export const runLogic: MachineLogic<RunContext, RunEvent> = { updates: runUpdates, guards: runGuards, effects: [] };

const lifecycleAfterEnd = 'the run is completed; lifecycle messages after end_run are refused';

/** `setup()` with the run machine's implementations; `createMachine` a recorded definition with it. */
export const runSetup = setup({
  types: { context: {} as RunContext, events: {} as RunEvent },
  actions: assignActions<RunContext, RunEvent, typeof runUpdates>(runUpdates),
  guards: guardPredicates<RunContext, RunEvent, typeof runGuards>(runGuards),
});

export const runMachine = runSetup.createMachine({
  id: 'run',
  description: 'RunState of one run: the lifecycle from the DAQ messages, and the slice counters.',
  context: initialRunContext,
  initial: 'initializing',
  // Sample and slice progress, counted in every state after run_imminent (initializing overrides with refusals).
  on: {
    SAMPLE_REGISTERED: [
      { guard: 'isSliceCount', actions: 'countSample' },
      refuseInPhase('a sample must carry a slice count (an integer >= 0)'),
    ],
    SLICE_CREATED: { actions: 'countSliceCreated' },
    SLICE_STARTED: [
      { guard: 'hasQueuedSlice', actions: 'countSliceStarted' },
      refuseInPhase('no slice is queued, so none can start'),
    ],
    SLICE_SUCCEEDED: [
      { guard: 'hasProcessingSlice', actions: 'countSliceSucceeded' },
      refuseInPhase('no slice is processing, so none can succeed'),
    ],
    SLICE_FAILED: [
      { guard: 'hasProcessingSlice', actions: 'countSliceFailed' },
      refuseInPhase('no slice is processing, so none can fail'),
    ],
  },
  states: {
    initializing: {
      description: 'Before run_imminent (the testbed runner creates RunState here).',
      on: {
        RUN_IMMINENT: { target: 'imminent', actions: 'recordImminent' },
        ...refusals('initializing', {
          START_RUN: 'start_run before run_imminent',
          STF_GEN: 'stf_gen before run_imminent',
          PAUSE_RUN: 'pause_run before run_imminent',
          RESUME_RUN: 'resume_run before run_imminent',
          END_RUN: 'end_run before run_imminent',
          SAMPLE_REGISTERED: 'a TF sample before run_imminent',
          SLICE_CREATED: 'a slice before run_imminent',
          SLICE_STARTED: 'a slice started before run_imminent',
          SLICE_SUCCEEDED: 'a slice result before run_imminent',
          SLICE_FAILED: 'a slice result before run_imminent',
        }),
      },
    },
    imminent: {
      description: 'run_imminent received: workers are being provisioned.',
      on: {
        START_RUN: { target: 'physics', actions: 'recordStart' },
        END_RUN: { target: 'completed', actions: 'recordEnd' },
        ...refusals('imminent', {
          RUN_IMMINENT: 'a second run_imminent for the same run',
          STF_GEN: 'stf_gen before start_run',
          PAUSE_RUN: 'pause_run before start_run',
          RESUME_RUN: 'resume_run before start_run: the run is not paused',
        }),
      },
    },
    physics: {
      description: 'Data taking: STFs arrive.',
      on: {
        STF_GEN: { actions: 'recordStf' },
        PAUSE_RUN: { target: 'standby', actions: 'recordPause' },
        END_RUN: { target: 'completed', actions: 'recordEnd' },
        ...refusals('physics', {
          RUN_IMMINENT: 'run_imminent for a run already in physics',
          START_RUN: 'a second start_run: the run is already in physics',
          RESUME_RUN: 'resume_run while in physics: the run is not paused',
        }),
      },
    },
    standby: {
      description: 'Paused between physics periods: no STFs.',
      on: {
        RESUME_RUN: { target: 'physics', actions: 'recordResume' },
        END_RUN: { target: 'completed', actions: 'recordEnd' },
        ...refusals('standby', {
          RUN_IMMINENT: 'run_imminent for a run in standby',
          START_RUN: 'start_run in standby: use resume_run',
          STF_GEN: 'stf_gen during standby: data taking is paused',
          PAUSE_RUN: 'pause_run in standby: the run is already paused',
        }),
      },
    },
    completed: {
      description: 'end_run received. Slices keep draining; the run is finished when every slice is final.',
      on: refusals('completed', {
        RUN_IMMINENT: lifecycleAfterEnd,
        START_RUN: lifecycleAfterEnd,
        STF_GEN: lifecycleAfterEnd,
        PAUSE_RUN: lifecycleAfterEnd,
        RESUME_RUN: lifecycleAfterEnd,
        END_RUN: lifecycleAfterEnd,
      }),
    },
  },
});

/** Phase `completed` and every slice final (none queued or processing). */
export function isFinished(snapshot: { context: RunContext }): boolean {
  const c = snapshot.context;
  return c.phase === 'completed' && c.slices_queued === 0 && c.slices_processing === 0;
}

/** The counters add up: queued + processing + completed + failed = created, none negative. */
export function countersAddUp(c: RunContext): boolean {
  const parts = [c.slices_queued, c.slices_processing, c.slices_completed, c.slices_failed, c.active_worker_count];
  return (
    parts.every((n) => n >= 0) &&
    c.slices_queued + c.slices_processing + c.slices_completed + c.slices_failed === c.slices_created
  );
}

/** The message body fields the run machine reads (structural, so any message object fits). */
export interface LifecycleBody {
  msg_type: string;
  run_id?: unknown;
  execution_id?: unknown;
  state?: unknown;
  substate?: unknown;
  total_stf_files?: unknown;
  content?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const stampOf = (m: LifecycleBody): RunStamp => ({
  ...(typeof m.state === 'string' ? { state: m.state } : {}),
  ...(typeof m.substate === 'string' || m.substate === null ? { substate: m.substate } : {}),
});

/**
 * The run event for a DAQ lifecycle message (run_imminent, start_run, stf_gen, pause_run, resume_run, the DAQ's
 * end_run), or undefined for any other message (including the workers' content-nested end_run).
 */
export function runEventOf(m: LifecycleBody, extra: { target_worker_count?: number } = {}): RunEvent | undefined {
  switch (m.msg_type) {
    case 'run_imminent': {
      const executionId = str(m.execution_id);
      return {
        type: 'RUN_IMMINENT',
        run_id: str(m.run_id) ?? '',
        ...(executionId !== undefined ? { execution_id: executionId } : {}),
        ...(extra.target_worker_count !== undefined ? { target_worker_count: extra.target_worker_count } : {}),
        ...stampOf(m),
      };
    }
    case 'start_run':
      return { type: 'START_RUN', ...stampOf(m) };
    case 'stf_gen':
      return { type: 'STF_GEN', ...stampOf(m) };
    case 'pause_run':
      return { type: 'PAUSE_RUN', ...stampOf(m) };
    case 'resume_run':
      return { type: 'RESUME_RUN', ...stampOf(m) };
    case 'end_run': {
      if (typeof m.content === 'object' && m.content !== null) return undefined;
      const total = m.total_stf_files;
      return typeof total === 'number' ? { type: 'END_RUN', total_stf_files: total } : { type: 'END_RUN' };
    }
    default:
      return undefined;
  }
}
