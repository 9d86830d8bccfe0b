/**
 * Property tests: on random event sequences, the fast path, XState's `transition()` (via `fold`) and a live actor
 * agree; a slice never exceeds its retries nor leaves a final state; the RunState counters always add up.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, transition, type AnyStateMachine } from 'xstate';
import {
  countersAddUp,
  daqMachine,
  fastDaq,
  fastRun,
  fastSlice,
  fold,
  machineDefinition,
  machineFromDefinition,
  runMachine,
  sliceMachine,
  type CompiledMachine,
  type DaqEvent,
  type RunEvent,
  type SliceEvent,
} from '../../src/machines/index.js';

const runEvent: fc.Arbitrary<RunEvent> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<RunEvent>({ type: 'RUN_IMMINENT', run_id: '100010', target_worker_count: 30 }) },
  { weight: 1, arbitrary: fc.constant<RunEvent>({ type: 'START_RUN' }) },
  { weight: 2, arbitrary: fc.constant<RunEvent>({ type: 'STF_GEN', state: 'run', substate: 'physics' }) },
  { weight: 1, arbitrary: fc.constant<RunEvent>({ type: 'PAUSE_RUN' }) },
  { weight: 1, arbitrary: fc.constant<RunEvent>({ type: 'RESUME_RUN' }) },
  { weight: 1, arbitrary: fc.nat(50).map<RunEvent>((n) => ({ type: 'END_RUN', total_stf_files: n })) },
  {
    weight: 3,
    arbitrary: fc.integer({ min: -1, max: 15 }).map<RunEvent>((slices) => ({ type: 'SAMPLE_REGISTERED', slices })),
  },
  { weight: 3, arbitrary: fc.constant<RunEvent>({ type: 'SLICE_CREATED' }) },
  { weight: 5, arbitrary: fc.constant<RunEvent>({ type: 'SLICE_STARTED' }) },
  { weight: 3, arbitrary: fc.constant<RunEvent>({ type: 'SLICE_SUCCEEDED' }) },
  { weight: 2, arbitrary: fc.boolean().map<RunEvent>((final) => ({ type: 'SLICE_FAILED', final })) },
);

const attempt = fc.integer({ min: 1, max: 5 });
const sliceEvent: fc.Arbitrary<SliceEvent> = fc.oneof(
  fc.record({
    type: fc.constant('START' as const),
    attempt,
    worker: fc.constantFrom('worker-1', 'worker-2'),
    lease_deadline: fc.constant('2026-01-01T00:01:30.000Z'),
  }),
  fc.record({ type: fc.constant('SUCCEED' as const), attempt }),
  fc.record({ type: fc.constant('FAIL' as const), attempt, reason: fc.constantFrom('error', 'timeout') }),
  fc.record({ type: fc.constant('LEASE_EXPIRED' as const), attempt }),
);

const daqEvent: fc.Arbitrary<DaqEvent> = fc.oneof(
  fc.constantFrom<DaqEvent>(
    { type: 'BEAM_READY' },
    { type: 'START_RUN' },
    { type: 'STF_GEN' },
    { type: 'PAUSE_RUN' },
    { type: 'RESUME_RUN' },
    { type: 'END_RUN' },
    { type: 'BEAM_OFF' },
  ),
  fc.constantFrom('100010', '100011').map<DaqEvent>((run_id) => ({ type: 'RUN_IMMINENT', run_id })),
);

const state = (s: { value: unknown; context: unknown }) => ({ value: s.value, context: s.context });

/** At every step, XState's transition() and the fast path give the same value, context and effects. */
function agreesStepByStep<C, E extends { type: string }, I>(
  machine: AnyStateMachine,
  fast: CompiledMachine<C, E, I>,
  events: readonly E[],
  input?: I,
): void {
  let x = fold(machine, [], { input });
  let f = fast.initial(input);
  expect(state(f)).toEqual(state(x));
  for (const e of events) {
    const [nx, actions] = transition(machine, x, e);
    const [nf, effects] = fast.transition(f, e);
    expect(state(nf)).toEqual(state(nx));
    expect(effects.map((a) => a.type)).toEqual(actions.map((a) => a.type));
    x = nx;
    f = nf;
  }
}

/** fold (XState transition) gives the same snapshot as a live actor fed the same events. */
function foldEqualsActor(machine: AnyStateMachine, events: readonly { type: string }[], input?: unknown): void {
  const actor = createActor(machine, { input });
  actor.start();
  for (const e of events) actor.send(e);
  const live = actor.getSnapshot() as { value: unknown; context: unknown };
  actor.stop();
  expect(state(fold(machine, events, { input }))).toEqual(state(live));
}

describe('machines agree: fast path = XState transition() = live actor', () => {
  it('run', () => {
    fc.assert(
      fc.property(fc.array(runEvent, { maxLength: 60 }), (events) => {
        agreesStepByStep(runMachine, fastRun, events);
        foldEqualsActor(runMachine, events);
      }),
      { numRuns: 200 },
    );
  });

  it('slice', () => {
    fc.assert(
      fc.property(fc.array(sliceEvent, { maxLength: 30 }), fc.nat(4), (events, max_retries) => {
        agreesStepByStep(sliceMachine, fastSlice, events, { max_retries });
        foldEqualsActor(sliceMachine, events, { max_retries });
      }),
      { numRuns: 300 },
    );
  });

  it('daq', () => {
    fc.assert(
      fc.property(fc.array(daqEvent, { maxLength: 40 }), (events) => {
        agreesStepByStep(daqMachine, fastDaq, events);
        foldEqualsActor(daqMachine, events);
      }),
      { numRuns: 200 },
    );
  });

  it('a machine loaded from its exported JSON definition behaves the same', () => {
    const runFromJson = machineFromDefinition('run', JSON.parse(JSON.stringify(machineDefinition('run'))));
    const sliceFromJson = machineFromDefinition('slice', JSON.parse(JSON.stringify(machineDefinition('slice'))));
    fc.assert(
      fc.property(
        fc.array(runEvent, { maxLength: 40 }),
        fc.array(sliceEvent, { maxLength: 20 }),
        fc.nat(4),
        (re, se, max) => {
          expect(state(fold(runFromJson, re))).toEqual(state(fold(runMachine, re)));
          const input = { max_retries: max };
          expect(state(fold(sliceFromJson, se, { input }))).toEqual(state(fold(sliceMachine, se, { input })));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('invariants', () => {
  it('a slice never exceeds its retries and never leaves a final state', () => {
    fc.assert(
      fc.property(fc.array(sliceEvent, { maxLength: 40 }), fc.nat(4), (events, max_retries) => {
        let s = fastSlice.initial({ max_retries });
        let finalAt: { value: unknown; attempt: number; retries: number } | undefined;
        for (const e of events) {
          s = fastSlice.next(s, e);
          expect(s.context.retries).toBeLessThanOrEqual(max_retries);
          expect(s.context.attempt).toBe(s.context.retries + 1);
          if (finalAt) {
            expect({ value: s.value, attempt: s.context.attempt, retries: s.context.retries }).toEqual(finalAt);
          } else if (s.value === 'completed' || s.value === 'failed') {
            finalAt = { value: s.value, attempt: s.context.attempt, retries: s.context.retries };
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('the RunState counters add up at every step, and phase mirrors the state', () => {
    fc.assert(
      fc.property(fc.array(runEvent, { maxLength: 80 }), (events) => {
        let s = fastRun.initial();
        for (const e of events) {
          s = fastRun.next(s, e);
          expect(countersAddUp(s.context)).toBe(true);
          expect(s.context.active_worker_count).toBe(s.context.slices_processing);
          expect(s.context.phase).toBe(s.value);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lifecycle messages never move a completed run', () => {
    fc.assert(
      fc.property(fc.array(runEvent, { maxLength: 60 }), (events) => {
        let s = fastRun.initial();
        let completed = false;
        for (const e of events) {
          s = fastRun.next(s, e);
          if (completed) expect(s.value).toBe('completed');
          completed ||= s.value === 'completed';
        }
      }),
      { numRuns: 200 },
    );
  });
});
