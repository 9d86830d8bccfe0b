import { describe, expect, it } from 'vitest';
import {
  countersAddUp,
  fastRun,
  fold,
  isFinished,
  runEventOf,
  runMachine,
  type RunContext,
  type RunEvent,
} from '../../src/machines/index.js';
import { given, type MachineUnderTest } from './givenWhenThen.js';

const run: MachineUnderTest<RunContext, RunEvent> = { machine: runMachine, fast: fastRun };

const imminent: RunEvent = {
  type: 'RUN_IMMINENT',
  run_id: '100010',
  execution_id: 'fast_processing-swf-0001',
  target_worker_count: 30,
  state: 'beam',
  substate: 'not_ready',
};
const start: RunEvent = { type: 'START_RUN', state: 'run', substate: 'physics' };
const stf: RunEvent = { type: 'STF_GEN', state: 'run', substate: 'physics' };
const pause: RunEvent = { type: 'PAUSE_RUN', state: 'run', substate: 'standby' };
const resume: RunEvent = { type: 'RESUME_RUN', state: 'run', substate: 'physics' };
const end: RunEvent = { type: 'END_RUN', total_stf_files: 1 };
const sample = (slices = 15): RunEvent => ({ type: 'SAMPLE_REGISTERED', slices });
const started: RunEvent = { type: 'SLICE_STARTED' };
const succeeded: RunEvent = { type: 'SLICE_SUCCEEDED' };
const failed = (final: boolean): RunEvent => ({ type: 'SLICE_FAILED', final });

/** How to reach each phase. */
const paths = {
  initializing: [],
  imminent: [imminent],
  physics: [imminent, start],
  standby: [imminent, start, pause],
  completed: [imminent, start, end],
} satisfies Record<string, RunEvent[]>;

const lifecycle: Record<string, RunEvent> = {
  RUN_IMMINENT: imminent,
  START_RUN: start,
  STF_GEN: stf,
  PAUSE_RUN: pause,
  RESUME_RUN: resume,
  END_RUN: end,
};

/** Where each lifecycle event leads from each phase; absent = refused. */
const legal: Record<string, Partial<Record<string, string>>> = {
  initializing: { RUN_IMMINENT: 'imminent' },
  imminent: { START_RUN: 'physics', END_RUN: 'completed' },
  physics: { STF_GEN: 'physics', PAUSE_RUN: 'standby', END_RUN: 'completed' },
  standby: { RESUME_RUN: 'physics', END_RUN: 'completed' },
  completed: {},
};

describe('run machine: lifecycle', () => {
  const cases = Object.entries(paths).flatMap(([phase, path]) =>
    Object.entries(lifecycle).map(([type, event]) => ({ phase, path, type, event, to: legal[phase]![type] })),
  );

  it.each(cases.filter((c) => c.to !== undefined))('in $phase, $type leads to $to', ({ path, event, to }) => {
    given(run, path)
      .when(event)
      .accepted()
      .state(to)
      .context({ phase: to as RunContext['phase'] });
  });

  it.each(cases.filter((c) => c.to === undefined))(
    'in $phase, $type is refused with a reason',
    ({ phase, path, event, type }) => {
      const then = given(run, path).when(event).refused();
      expect(then.after.context.lastRefusal).toMatchObject({ event: type, state: phase });
      expect(then.after.context.lastRefusal!.reason.length).toBeGreaterThan(5);
    },
  );

  it('refuses stf_gen during standby, saying data taking is paused', () => {
    given(run, paths.standby)
      .when(stf)
      .refused(/stf_gen during standby/);
  });

  it('refuses a second start_run', () => {
    given(run, paths.physics)
      .when(start)
      .refused(/second start_run/);
  });

  it('refuses every lifecycle message after completed', () => {
    for (const event of Object.values(lifecycle))
      given(run, paths.completed)
        .when(event)
        .refused(/after end_run/);
  });

  it('starts in initializing with the testbed runner stamp imminent/preparing', () => {
    expect(given(run).snapshot.context).toMatchObject({
      phase: 'initializing',
      state: 'imminent',
      substate: 'preparing',
      refusals: 0,
      lastRefusal: null,
    });
  });

  it('records the run, execution and target worker count from run_imminent', () => {
    given(run).when(imminent).context({
      run_id: '100010',
      execution_id: 'fast_processing-swf-0001',
      target_worker_count: 30,
      state: 'beam',
      substate: 'not_ready',
    });
  });

  it('carries the E0-E1 stamp of the last lifecycle message, defaulting per message type', () => {
    given(run, paths.physics).when({ type: 'PAUSE_RUN' }).context({ state: 'run', substate: 'standby' });
    given(run, paths.imminent)
      .when({ type: 'START_RUN', state: 'run', substate: 'lumi' })
      .context({ substate: 'lumi' });
  });

  it('stamps ended with no substate on end_run and keeps total_stf_files', () => {
    given(run, paths.physics).when(end).context({ state: 'ended', substate: null, total_stf_files: 1 });
  });

  it('counts accepted stf_gen messages', () => {
    given(run, [...paths.physics, stf, stf])
      .when(stf)
      .context({ stf_files: 3 });
  });

  it('lets a run end from standby and from imminent (a stopped run)', () => {
    given(run, paths.standby).when(end).state('completed');
    given(run, paths.imminent).when(end).state('completed');
  });
});

describe('run machine: slice progress', () => {
  const physics = paths.physics;

  it('counts a registered sample and its slices as created and queued', () => {
    given(run, physics).when(sample(15)).accepted().context({
      stf_samples_received: 1,
      slices_created: 15,
      slices_queued: 15,
    });
  });

  it('moves a started slice from queued to processing and counts its worker as active', () => {
    given(run, [...physics, sample(2)])
      .when(started)
      .context({ slices_queued: 1, slices_processing: 1, active_worker_count: 1 });
  });

  it('moves a succeeded slice to completed and frees its worker', () => {
    given(run, [...physics, sample(2), started])
      .when(succeeded)
      .context({ slices_processing: 0, slices_completed: 1, active_worker_count: 0 });
  });

  it('re-queues a failed attempt that has retries left and counts the retry', () => {
    given(run, [...physics, sample(2), started])
      .when(failed(false))
      .context({ slices_queued: 2, slices_processing: 0, slices_failed: 0, slices_retried: 1 });
  });

  it('counts a final failure as failed', () => {
    given(run, [...physics, sample(2), started])
      .when(failed(true))
      .context({ slices_queued: 1, slices_failed: 1, active_worker_count: 0 });
  });

  it('refuses a slice start when none is queued', () => {
    given(run, physics)
      .when(started)
      .refused(/no slice is queued/);
  });

  it('refuses a result when no slice is processing', () => {
    given(run, [...physics, sample(1)])
      .when(succeeded)
      .refused(/no slice is processing/);
    given(run, [...physics, sample(1)])
      .when(failed(true))
      .refused(/no slice is processing/);
  });

  it('refuses a sample without a whole, non-negative slice count', () => {
    given(run, physics)
      .when(sample(-1))
      .refused(/slice count/);
    given(run, physics)
      .when(sample(1.5))
      .refused(/slice count/);
  });

  it('refuses progress before run_imminent', () => {
    given(run)
      .when(sample(3))
      .refused(/before run_imminent/);
  });

  it('records the phase a progress refusal happened in', () => {
    const then = given(run, paths.standby).when(started).refused();
    expect(then.after.context.lastRefusal).toMatchObject({ event: 'SLICE_STARTED', state: 'standby' });
  });

  it('keeps counting slice progress after end_run, because the queue drains after data taking', () => {
    given(run, [...physics, sample(2), started, end])
      .when(succeeded)
      .accepted()
      .state('completed')
      .context({ slices_completed: 1 });
    given(run, [...physics, end])
      .when(sample(3))
      .accepted()
      .context({ slices_created: 3 });
  });

  it('is finished only when completed and every slice is final', () => {
    const events = [...physics, sample(2), started, succeeded, end];
    expect(isFinished(fold(runMachine, events))).toBe(false);
    expect(isFinished(fold(runMachine, [...events, started]))).toBe(false);
    expect(isFinished(fold(runMachine, [...events, started, failed(true)]))).toBe(true);
    expect(isFinished(fold(runMachine, [...physics, sample(0), started]))).toBe(false);
    expect(isFinished(fold(runMachine, [imminent, end]))).toBe(true);
  });

  it('keeps queued + processing + completed + failed = created', () => {
    const s = fold(runMachine, [
      ...physics,
      sample(3),
      started,
      started,
      failed(false),
      succeeded,
      started,
      failed(true),
    ]);
    expect(countersAddUp(s.context)).toBe(true);
    expect(s.context).toMatchObject({ slices_created: 3, slices_completed: 1, slices_failed: 1, slices_queued: 1 });
  });
});

describe('runEventOf', () => {
  const body = { run_id: '101993', execution_id: 'stf_datataking-wenauseic-0049', state: 'run', substate: 'physics' };

  it('maps each DAQ lifecycle message to its run event', () => {
    expect(
      runEventOf(
        { msg_type: 'run_imminent', ...body, state: 'beam', substate: 'not_ready' },
        { target_worker_count: 30 },
      ),
    ).toEqual({
      type: 'RUN_IMMINENT',
      run_id: '101993',
      execution_id: 'stf_datataking-wenauseic-0049',
      target_worker_count: 30,
      state: 'beam',
      substate: 'not_ready',
    });
    expect(runEventOf({ msg_type: 'start_run', ...body })).toEqual({
      type: 'START_RUN',
      state: 'run',
      substate: 'physics',
    });
    expect(runEventOf({ msg_type: 'stf_gen', ...body })?.type).toBe('STF_GEN');
    expect(runEventOf({ msg_type: 'pause_run', ...body })?.type).toBe('PAUSE_RUN');
    expect(runEventOf({ msg_type: 'resume_run', ...body })?.type).toBe('RESUME_RUN');
    expect(runEventOf({ msg_type: 'end_run', run_id: '101993', total_stf_files: 3 })).toEqual({
      type: 'END_RUN',
      total_stf_files: 3,
    });
  });

  it('ignores the workers end_run and every other message', () => {
    expect(runEventOf({ msg_type: 'end_run', run_id: '1', content: { total_stf_files: 3 } })).toBeUndefined();
    expect(runEventOf({ msg_type: 'stf_ready' })).toBeUndefined();
    expect(runEventOf({ msg_type: 'slice' })).toBeUndefined();
  });
});
