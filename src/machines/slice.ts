/**
 * The slice machine: one TF slice's processing (DESIGN.md semantics 6).
 *
 * `queued → processing → completed | failed`. A failed attempt (a failed `slice_result`, or an expired lease) goes
 * back to `queued` with `attempt + 1` while `retries < max_retries` (3: at most 4 attempts); then `failed` is
 * final. Events name the attempt they are about, so a late result for an attempt that already timed out is
 * refused rather than counted. `completed` and `failed` are final (tag `final`): every event there is refused.
 */
import { setup } from 'xstate';
import { ValidationError } from '../errors.js';
import {
  assignActions,
  effectActions,
  guardPredicates,
  refusals,
  refuse,
  type Guard,
  type MachineLogic,
  type RefusalRecord,
  type Update,
} from './logic.js';

export const SLICE_STATES = ['queued', 'processing', 'completed', 'failed'] as const;
export type SliceStatus = (typeof SLICE_STATES)[number];

export interface SliceContext extends RefusalRecord {
  /** 1-based; the attempt the slice is on. */
  attempt: number;
  /** Failed attempts so far that went back to the queue. */
  retries: number;
  max_retries: number;
  /** The worker holding the lease while processing. */
  worker: string | null;
  lease_deadline: string | null;
  /** Why the last attempt failed. */
  last_error: string | null;
}

export interface SliceInput {
  /** `[fast_processing] max_slice_retries`; default 3. */
  max_retries?: number;
}

export type SliceEvent =
  /** A worker took the slice (SliceProcessingStarted). */
  | { type: 'START'; attempt: number; worker: string; lease_deadline?: string | null }
  /** A `slice_result` with state `done`. */
  | { type: 'SUCCEED'; attempt: number }
  /** A `slice_result` with state `failed`. */
  | { type: 'FAIL'; attempt: number; reason?: string }
  /** The lease passed its deadline with no result (SliceLeaseExpired): a failed attempt. */
  | { type: 'LEASE_EXPIRED'; attempt: number };

export type SliceEventType = SliceEvent['type'];
export const SLICE_EVENTS = ['START', 'SUCCEED', 'FAIL', 'LEASE_EXPIRED'] as const;

export const DEFAULT_MAX_SLICE_RETRIES = 3;

export function initialSliceContext(input: SliceInput = {}): SliceContext {
  return {
    attempt: 1,
    retries: 0,
    max_retries: input.max_retries ?? DEFAULT_MAX_SLICE_RETRIES,
    worker: null,
    lease_deadline: null,
    last_error: null,
    refusals: 0,
    lastRefusal: null,
  };
}

type SliceUpdate<P = undefined> = Update<SliceContext, SliceEvent, P>;
type SliceGuard = Guard<SliceContext, SliceEvent>;

const failureReason = (e: SliceEvent): string =>
  e.type === 'LEASE_EXPIRED' ? 'lease expired' : e.type === 'FAIL' ? (e.reason ?? 'failed') : e.type;

/** The slice's context updates, shared by `setup()` and the fast path. */
export const sliceUpdates = {
  takeLease: ((_c, e) => {
    const ev = e as Extract<SliceEvent, { type: 'START' }>;
    return { worker: ev.worker, lease_deadline: ev.lease_deadline ?? null };
  }) as SliceUpdate,
  releaseLease: (() => ({ worker: null, lease_deadline: null })) as SliceUpdate,
  retry: ((c, e) => ({
    attempt: c.attempt + 1,
    retries: c.retries + 1,
    worker: null,
    lease_deadline: null,
    last_error: failureReason(e),
  })) as SliceUpdate,
  failFinally: ((_c, e) => ({ worker: null, lease_deadline: null, last_error: failureReason(e) })) as SliceUpdate,
  refuse: refuse<SliceContext, SliceEvent>,
};

const isCurrentAttempt: SliceGuard = (c, e) => (e as { attempt?: unknown }).attempt === c.attempt;

/** The slice's guards, shared by `setup()` and the fast path. */
export const sliceGuards = {
  isCurrentAttempt,
  canRetry: ((c, e) => isCurrentAttempt(c, e, undefined) && c.retries < c.max_retries) as SliceGuard,
};

/** Effects the agent performs after the transition: `requeueSlice` = send a new `slice` with the new attempt. */
export const SLICE_EFFECTS = ['requeueSlice'] as const;

export const sliceLogic: MachineLogic<SliceContext, SliceEvent> = {
  updates: sliceUpdates,
  guards: sliceGuards,
  effects: SLICE_EFFECTS,
};

const staleAttempt = (state: string) => ({
  actions: {
    type: 'refuse' as const,
    params: { state, reason: 'the event names another attempt than the current one' },
  },
});
const isOver = (state: string) => 'the slice is ' + state + '; it takes no more events';

/** `setup()` with the slice machine's implementations; `createMachine` a recorded definition with it. */
export const sliceSetup = setup({
  types: { context: {} as SliceContext, events: {} as SliceEvent, input: {} },
  actions: {
    ...assignActions<SliceContext, SliceEvent, typeof sliceUpdates>(sliceUpdates),
    ...effectActions(SLICE_EFFECTS),
  },
  guards: guardPredicates<SliceContext, SliceEvent, typeof sliceGuards>(sliceGuards),
});

export const sliceMachine = sliceSetup.createMachine({
  id: 'slice',
  description: 'One TF slice: queued, taken by a worker, completed or failed; failed attempts are retried.',
  context: ({ input }) => initialSliceContext(input),
  initial: 'queued',
  states: {
    queued: {
      description: 'Waiting in the slice queue for a worker.',
      on: {
        START: [{ guard: 'isCurrentAttempt', target: 'processing', actions: 'takeLease' }, staleAttempt('queued')],
        ...refusals('queued', {
          SUCCEED: 'a result for a queued slice: no worker holds it',
          FAIL: 'a result for a queued slice: no worker holds it',
          LEASE_EXPIRED: 'a lease expiry for a queued slice: no worker holds it',
        }),
      },
    },
    processing: {
      description: 'A worker holds the lease until its deadline.',
      on: {
        SUCCEED: [
          { guard: 'isCurrentAttempt', target: 'completed', actions: 'releaseLease' },
          staleAttempt('processing'),
        ],
        FAIL: [
          { guard: 'canRetry', target: 'queued', actions: ['retry', 'requeueSlice'] },
          { guard: 'isCurrentAttempt', target: 'failed', actions: 'failFinally' },
          staleAttempt('processing'),
        ],
        LEASE_EXPIRED: [
          { guard: 'canRetry', target: 'queued', actions: ['retry', 'requeueSlice'] },
          { guard: 'isCurrentAttempt', target: 'failed', actions: 'failFinally' },
          staleAttempt('processing'),
        ],
        ...refusals('processing', { START: 'the slice is already held by a worker' }),
      },
    },
    completed: {
      description: 'Processed. Final.',
      tags: ['final'],
      on: refusals('completed', {
        START: isOver('completed'),
        SUCCEED: isOver('completed'),
        FAIL: isOver('completed'),
        LEASE_EXPIRED: isOver('completed'),
      }),
    },
    failed: {
      description: 'Failed with no retry left. Final.',
      tags: ['final'],
      on: refusals('failed', {
        START: isOver('failed'),
        SUCCEED: isOver('failed'),
        FAIL: isOver('failed'),
        LEASE_EXPIRED: isOver('failed'),
      }),
    },
  },
});

export const isFinalSliceStatus = (status: string): boolean => status === 'completed' || status === 'failed';

/** Whether a failed attempt is the last one: with `max_retries` 3, attempt 4's failure is final. */
export const isFinalAttempt = (attempt: number, maxRetries: number): boolean => attempt > maxRetries;

/** When a lease taken at `startedAt` expires: `slice_lease_factor × slice_processing_time` seconds later. */
export function leaseDeadline(startedAt: string, sliceProcessingTime: number, leaseFactor: number): string {
  const t = Date.parse(startedAt);
  if (Number.isNaN(t)) {
    throw new ValidationError(`not a timestamp: ${JSON.stringify(startedAt)}`, { field: 'started_at' });
  }
  return new Date(t + Math.round(sliceProcessingTime * leaseFactor * 1000)).toISOString();
}
