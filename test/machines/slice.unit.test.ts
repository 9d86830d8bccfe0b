import { describe, expect, it } from 'vitest';
import {
  fastSlice,
  isFinalAttempt,
  leaseDeadline,
  sliceMachine,
  type SliceContext,
  type SliceEvent,
  type SliceInput,
} from '../../src/machines/index.js';
import { given, type MachineUnderTest } from './givenWhenThen.js';

const slice: MachineUnderTest<SliceContext, SliceEvent, SliceInput> = { machine: sliceMachine, fast: fastSlice };
const withRetries = (max_retries: number): MachineUnderTest<SliceContext, SliceEvent, SliceInput> => ({
  ...slice,
  input: { max_retries },
});

const start = (attempt: number, worker = 'worker-1'): SliceEvent => ({
  type: 'START',
  attempt,
  worker,
  lease_deadline: '2026-01-01T00:01:30.000Z',
});
const succeed = (attempt: number): SliceEvent => ({ type: 'SUCCEED', attempt });
const fail = (attempt: number, reason = 'payload failed'): SliceEvent => ({ type: 'FAIL', attempt, reason });
const expire = (attempt: number): SliceEvent => ({ type: 'LEASE_EXPIRED', attempt });

/** Events that fail attempts 1..n (each taken, then failed). */
const failedAttempts = (n: number): SliceEvent[] =>
  Array.from({ length: n }, (_, i) => [start(i + 1), fail(i + 1)]).flat();

describe('slice machine', () => {
  it('starts queued on attempt 1 with no retries and max_slice_retries 3 by default', () => {
    expect(given(slice).snapshot).toMatchObject({
      value: 'queued',
      context: { attempt: 1, retries: 0, max_retries: 3, worker: null, refusals: 0 },
    });
  });

  it('takes max_retries from its input', () => {
    expect(given(withRetries(1)).snapshot.context.max_retries).toBe(1);
  });

  it('goes to processing when a worker takes the current attempt, holding its lease', () => {
    given(slice).when(start(1)).accepted().state('processing').context({
      worker: 'worker-1',
      lease_deadline: '2026-01-01T00:01:30.000Z',
    });
  });

  it('completes on success and releases the lease', () => {
    given(slice, [start(1)])
      .when(succeed(1))
      .accepted()
      .state('completed')
      .context({ worker: null, lease_deadline: null });
  });

  it('re-queues a failed slice until the third retry, then fails it', () => {
    given(slice, [start(1)])
      .when(fail(1))
      .state('queued')
      .context({ attempt: 2, retries: 1 })
      .emits('requeueSlice');
    given(slice, [...failedAttempts(2), start(3)])
      .when(fail(3))
      .state('queued')
      .context({ attempt: 4, retries: 3 });
    given(slice, [...failedAttempts(3), start(4)])
      .when(fail(4, 'segfault'))
      .state('failed')
      .context({ attempt: 4, retries: 3, last_error: 'segfault', worker: null })
      .emits();
  });

  it('counts an expired lease as a failed attempt', () => {
    given(slice, [start(1)])
      .when(expire(1))
      .state('queued')
      .context({ attempt: 2, retries: 1, last_error: 'lease expired' })
      .emits('requeueSlice');
    given(withRetries(0), [start(1)])
      .when(expire(1))
      .state('failed');
  });

  it('refuses a late result for an attempt whose lease already expired', () => {
    given(slice, [start(1), expire(1), start(2, 'worker-2')])
      .when(succeed(1))
      .refused(/another attempt/);
  });

  it('refuses a failure or lease expiry naming another attempt while processing', () => {
    given(slice, [start(1), fail(1), start(2)])
      .when(fail(1))
      .refused(/another attempt/);
    given(slice, [start(1), fail(1), start(2)])
      .when(expire(3))
      .refused(/another attempt/);
  });

  it('refuses a start for another attempt than the current one', () => {
    given(slice)
      .when(start(2))
      .refused(/another attempt/);
  });

  it('refuses results and lease expiry while queued: no worker holds it', () => {
    given(slice)
      .when(succeed(1))
      .refused(/no worker holds it/);
    given(slice)
      .when(fail(1))
      .refused(/no worker holds it/);
    given(slice)
      .when(expire(1))
      .refused(/no worker holds it/);
  });

  it('refuses a second worker taking a slice that is processing', () => {
    given(slice, [start(1)])
      .when(start(1, 'worker-2'))
      .refused(/already held/);
  });

  it.each([
    ['completed', [start(1), succeed(1)]],
    ['failed', [start(1), fail(1)]],
  ] as const)('never leaves %s: every event there is refused', (state, path) => {
    const m = state === 'failed' ? withRetries(0) : slice;
    for (const e of [start(1), start(2), succeed(1), fail(1), expire(1)]) {
      given(m, path)
        .when(e)
        .refused(/takes no more events/);
    }
  });

  it('tags completed and failed as final', () => {
    expect(sliceMachine.states.completed?.tags).toContain('final');
    expect(sliceMachine.states.failed?.tags).toContain('final');
  });
});

describe('slice rules', () => {
  it('calls the failure of the attempt after the last retry final', () => {
    expect(isFinalAttempt(3, 3)).toBe(false);
    expect(isFinalAttempt(4, 3)).toBe(true);
    expect(isFinalAttempt(1, 0)).toBe(true);
  });

  it('puts the lease deadline slice_lease_factor × slice_processing_time after the start', () => {
    expect(leaseDeadline('2026-01-01T00:00:00.000Z', 30, 3)).toBe('2026-01-01T00:01:30.000Z');
    expect(() => leaseDeadline('yesterday', 30, 3)).toThrow(/not a timestamp/);
  });
});
