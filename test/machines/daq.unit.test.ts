import { describe, expect, it } from 'vitest';
import {
  daqEventOf,
  daqMachine,
  daqStamp,
  fastDaq,
  fold,
  type DaqContext,
  type DaqEvent,
} from '../../src/machines/index.js';
import { given, type MachineUnderTest } from './givenWhenThen.js';

const daq: MachineUnderTest<DaqContext, DaqEvent> = { machine: daqMachine, fast: fastDaq };

const ev = (type: DaqEvent['type']): DaqEvent => (type === 'RUN_IMMINENT' ? { type, run_id: '100010' } : { type });

const paths = {
  'no_beam.not_ready': [],
  'beam.not_ready': [ev('RUN_IMMINENT')],
  'beam.ready': [ev('RUN_IMMINENT'), ev('BEAM_READY')],
  'run.physics': [ev('RUN_IMMINENT'), ev('BEAM_READY'), ev('START_RUN')],
  'run.standby': [ev('RUN_IMMINENT'), ev('BEAM_READY'), ev('START_RUN'), ev('PAUSE_RUN')],
  'beam.not_ready (ended)': [ev('RUN_IMMINENT'), ev('BEAM_READY'), ev('START_RUN'), ev('END_RUN')],
} satisfies Record<string, DaqEvent[]>;

const legal: Record<string, Partial<Record<DaqEvent['type'], string>>> = {
  'no_beam.not_ready': { RUN_IMMINENT: 'beam.not_ready' },
  'beam.not_ready': { BEAM_READY: 'beam.ready', END_RUN: 'beam.not_ready' },
  'beam.ready': { START_RUN: 'run.physics', END_RUN: 'beam.not_ready' },
  'run.physics': { STF_GEN: 'run.physics', PAUSE_RUN: 'run.standby', END_RUN: 'beam.not_ready' },
  'run.standby': { RESUME_RUN: 'run.physics', END_RUN: 'beam.not_ready' },
  'beam.not_ready (ended)': { BEAM_OFF: 'no_beam.not_ready' },
};

const valueOf = (key: string): unknown => {
  const [state, substate] = key.split(' ')[0]!.split('.');
  return { [state!]: substate };
};

describe('DAQ machine', () => {
  const types = [
    'RUN_IMMINENT',
    'BEAM_READY',
    'START_RUN',
    'STF_GEN',
    'PAUSE_RUN',
    'RESUME_RUN',
    'END_RUN',
    'BEAM_OFF',
  ] as const;
  const cases = Object.entries(paths).flatMap(([from, path]) =>
    types.map((type) => ({ from, path, type, to: legal[from]![type] })),
  );

  it.each(cases.filter((c) => c.to !== undefined))('from $from, $type leads to $to', ({ path, type, to }) => {
    given(daq, path).when(ev(type)).accepted().state(valueOf(to!));
  });

  it.each(cases.filter((c) => c.to === undefined))('from $from, $type is refused', ({ path, type }) => {
    const then = given(daq, path).when(ev(type)).refused();
    expect(then.after.context.lastRefusal).toMatchObject({ event: type });
  });

  it('starts at no_beam/not_ready', () => {
    expect(given(daq).snapshot.value).toEqual({ no_beam: 'not_ready' });
  });

  it('walks the testbed sequence with two physics periods, numbering STFs across them', () => {
    const events = [
      ev('RUN_IMMINENT'),
      ev('BEAM_READY'),
      ev('START_RUN'),
      ev('STF_GEN'),
      ev('STF_GEN'),
      ev('PAUSE_RUN'),
      ev('RESUME_RUN'),
      ev('STF_GEN'),
      ev('END_RUN'),
      ev('BEAM_OFF'),
    ];
    const s = fold(daqMachine, events);
    expect(s.value).toEqual({ no_beam: 'not_ready' });
    expect(s.context).toMatchObject({
      run_id: '100010',
      run_active: false,
      stf_sequence: 3,
      physics_periods: 2,
      refusals: 0,
    });
  });

  it('refuses stf_gen during standby', () => {
    given(daq, paths['run.standby'])
      .when(ev('STF_GEN'))
      .refused(/during standby/);
  });

  it('refuses to turn the beam off while a run is imminent', () => {
    given(daq, paths['beam.not_ready'])
      .when(ev('BEAM_OFF'))
      .refused(/end it first/);
  });

  it('announces a new run after the beam went off, resetting the STF sequence', () => {
    given(daq, [...paths['beam.not_ready (ended)'], ev('BEAM_OFF')])
      .when({ type: 'RUN_IMMINENT', run_id: '100011' })
      .state({ beam: 'not_ready' })
      .context({ run_id: '100011', run_active: true, stf_sequence: 0, runs: 2 });
  });

  it('gives only legal state/substate pairs as the message stamp', () => {
    const legalPairs = new Set(['no_beam/not_ready', 'beam/not_ready', 'beam/ready', 'run/physics', 'run/standby']);
    for (const key of fastDaq.states) {
      const { state, substate } = daqStamp(valueOf(key));
      expect(legalPairs.has(`${state}/${substate}`)).toBe(true);
    }
    expect(daqStamp({ run: 'standby' })).toEqual({ state: 'run', substate: 'standby' });
  });

  it('maps DAQ lifecycle messages to its events and ignores the workers end_run', () => {
    expect(daqEventOf({ msg_type: 'run_imminent', run_id: '100010' })).toEqual({
      type: 'RUN_IMMINENT',
      run_id: '100010',
    });
    expect(daqEventOf({ msg_type: 'end_run' })).toEqual({ type: 'END_RUN' });
    expect(daqEventOf({ msg_type: 'end_run', content: {} })).toBeUndefined();
    expect(daqEventOf({ msg_type: 'stf_ready' })).toBeUndefined();
  });
});
