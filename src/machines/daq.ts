/**
 * The DAQ machine: the E0-E1 states and substates the DAQ simulator walks through (testbed-facts §2).
 *
 * `no_beam/not_ready → beam/not_ready (run_imminent) → beam/ready → run/physics (start_run) ↔ run/standby
 * (pause_run/resume_run) → beam/not_ready (end_run) → no_beam/not_ready`. States are nested (state → substate), so
 * only legal pairs can occur; `daqStamp` gives the pair a message carries. The DAQ simulator sends a lifecycle
 * message only when the machine accepts the matching event; `BEAM_READY` and `BEAM_OFF` are the steps the testbed
 * takes without a message (after its configured delays).
 */
import { setup } from 'xstate';
import { ValidationError } from '../errors.js';
import { DAQ_STATES, DAQ_SUBSTATES, type DaqState, type DaqSubstate } from '../messages/schemas.js';
import {
  assignActions,
  guardPredicates,
  refusal,
  refusals,
  refuse,
  type Guard,
  type MachineLogic,
  type RefusalRecord,
  type Update,
} from './logic.js';

export interface DaqContext extends RefusalRecord {
  /** The run being taken (from run_imminent to end_run), else the last one. */
  run_id: string | null;
  /** Between run_imminent and end_run. */
  run_active: boolean;
  /** STFs generated in the run; the last one's sequence (never reset between physics periods). */
  stf_sequence: number;
  /** Physics periods started in the run. */
  physics_periods: number;
  /** Runs announced since the machine started. */
  runs: number;
}

export type DaqEvent =
  | { type: 'RUN_IMMINENT'; run_id: string }
  | { type: 'BEAM_READY' }
  | { type: 'START_RUN' }
  | { type: 'STF_GEN' }
  | { type: 'PAUSE_RUN' }
  | { type: 'RESUME_RUN' }
  | { type: 'END_RUN' }
  | { type: 'BEAM_OFF' };

export type DaqEventType = DaqEvent['type'];
export const DAQ_EVENTS = [
  'RUN_IMMINENT',
  'BEAM_READY',
  'START_RUN',
  'STF_GEN',
  'PAUSE_RUN',
  'RESUME_RUN',
  'END_RUN',
  'BEAM_OFF',
] as const;

export const initialDaqContext: DaqContext = Object.freeze({
  run_id: null,
  run_active: false,
  stf_sequence: 0,
  physics_periods: 0,
  runs: 0,
  refusals: 0,
  lastRefusal: null,
});

type DaqUpdate = Update<DaqContext, DaqEvent>;
type DaqGuard = Guard<DaqContext, DaqEvent>;

/** The DAQ's context updates, shared by `setup()` and the fast path. */
export const daqUpdates = {
  announceRun: ((c, e) => ({
    run_id: (e as Extract<DaqEvent, { type: 'RUN_IMMINENT' }>).run_id,
    run_active: true,
    stf_sequence: 0,
    physics_periods: 0,
    runs: c.runs + 1,
  })) as DaqUpdate,
  startPhysics: ((c) => ({ physics_periods: c.physics_periods + 1 })) as DaqUpdate,
  countStf: ((c) => ({ stf_sequence: c.stf_sequence + 1 })) as DaqUpdate,
  endRun: (() => ({ run_active: false })) as DaqUpdate,
  refuse: refuse<DaqContext, DaqEvent>,
};

/** The DAQ's guards, shared by `setup()` and the fast path. */
export const daqGuards = {
  runActive: ((c) => c.run_active) as DaqGuard,
  noRunActive: ((c) => !c.run_active) as DaqGuard,
};

export const daqLogic: MachineLogic<DaqContext, DaqEvent> = { updates: daqUpdates, guards: daqGuards, effects: [] };

/** `setup()` with the daq machine's implementations; `createMachine` a recorded definition with it. */
export const daqSetup = setup({
  types: { context: {} as DaqContext, events: {} as DaqEvent },
  actions: assignActions<DaqContext, DaqEvent, typeof daqUpdates>(daqUpdates),
  guards: guardPredicates<DaqContext, DaqEvent, typeof daqGuards>(daqGuards),
});

export const daqMachine = daqSetup.createMachine({
  id: 'daq',
  description: 'The E0-E1 states and substates of the DAQ during runs.',
  context: initialDaqContext,
  initial: 'no_beam',
  states: {
    no_beam: {
      description: 'Collider not operating.',
      initial: 'not_ready',
      states: {
        not_ready: {
          on: {
            RUN_IMMINENT: { target: '#daq.beam.not_ready', actions: 'announceRun' },
            ...refusals('no_beam.not_ready', {
              BEAM_READY: 'no beam: announce a run first (run_imminent)',
              START_RUN: 'start_run without beam',
              STF_GEN: 'stf_gen without beam',
              PAUSE_RUN: 'pause_run without beam',
              RESUME_RUN: 'resume_run without beam',
              END_RUN: 'end_run without a run',
              BEAM_OFF: 'the beam is already off',
            }),
          },
        },
      },
    },
    beam: {
      description: 'Beam on; the run is imminent, or it has just ended.',
      initial: 'not_ready',
      states: {
        not_ready: {
          on: {
            BEAM_READY: [{ guard: 'runActive', target: 'ready' }, refusal('beam.not_ready', 'no run is imminent')],
            BEAM_OFF: [
              { guard: 'noRunActive', target: '#daq.no_beam.not_ready' },
              refusal('beam.not_ready', 'a run is imminent: end it first'),
            ],
            END_RUN: [
              { guard: 'runActive', target: 'not_ready', actions: 'endRun' },
              refusal('beam.not_ready', 'end_run without a run'),
            ],
            ...refusals('beam.not_ready', {
              RUN_IMMINENT: 'run_imminent while the beam is on: the previous run must end and the beam go off',
              START_RUN: 'start_run before the beam is ready',
              STF_GEN: 'stf_gen before start_run',
              PAUSE_RUN: 'pause_run before start_run',
              RESUME_RUN: 'resume_run before start_run',
            }),
          },
        },
        ready: {
          on: {
            START_RUN: { target: '#daq.run.physics', actions: 'startPhysics' },
            END_RUN: { target: 'not_ready', actions: 'endRun' },
            ...refusals('beam.ready', {
              RUN_IMMINENT: 'run_imminent while a run is imminent',
              BEAM_READY: 'the beam is already ready',
              STF_GEN: 'stf_gen before start_run',
              PAUSE_RUN: 'pause_run before start_run',
              RESUME_RUN: 'resume_run before start_run',
              BEAM_OFF: 'a run is imminent: end it first',
            }),
          },
        },
      },
    },
    run: {
      description: 'Taking data.',
      initial: 'physics',
      states: {
        physics: {
          on: {
            STF_GEN: { actions: 'countStf' },
            PAUSE_RUN: { target: 'standby' },
            END_RUN: { target: '#daq.beam.not_ready', actions: 'endRun' },
            ...refusals('run.physics', {
              RUN_IMMINENT: 'run_imminent during a run',
              BEAM_READY: 'the run is in physics',
              START_RUN: 'a second start_run',
              RESUME_RUN: 'resume_run while in physics: the run is not paused',
              BEAM_OFF: 'the run is in physics: end it first',
            }),
          },
        },
        standby: {
          on: {
            RESUME_RUN: { target: 'physics', actions: 'startPhysics' },
            END_RUN: { target: '#daq.beam.not_ready', actions: 'endRun' },
            ...refusals('run.standby', {
              RUN_IMMINENT: 'run_imminent during a run',
              BEAM_READY: 'the run is in standby',
              START_RUN: 'start_run in standby: use resume_run',
              STF_GEN: 'stf_gen during standby: data taking is paused',
              PAUSE_RUN: 'pause_run in standby: the run is already paused',
              BEAM_OFF: 'the run is in standby: end it first',
            }),
          },
        },
      },
    },
  },
});

const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T =>
  typeof v === 'string' && (list as readonly string[]).includes(v);

/** The E0-E1 stamp (`state`, `substate`) for a DAQ state value such as `{ run: 'physics' }`. */
export function daqStamp(value: unknown): { state: DaqState; substate: DaqSubstate } {
  if (typeof value === 'object' && value !== null) {
    const [state, substate] = Object.entries(value as Record<string, unknown>)[0] ?? [];
    if (isOneOf(DAQ_STATES, state) && isOneOf(DAQ_SUBSTATES, substate)) return { state, substate };
  }
  throw new ValidationError(`not a DAQ state value: ${JSON.stringify(value)}`, { field: 'value' });
}

/** The DAQ event for a lifecycle message type, or undefined. */
export function daqEventOf(m: { msg_type: string; run_id?: unknown; content?: unknown }): DaqEvent | undefined {
  switch (m.msg_type) {
    case 'run_imminent':
      return { type: 'RUN_IMMINENT', run_id: typeof m.run_id === 'string' ? m.run_id : '' };
    case 'start_run':
      return { type: 'START_RUN' };
    case 'stf_gen':
      return { type: 'STF_GEN' };
    case 'pause_run':
      return { type: 'PAUSE_RUN' };
    case 'resume_run':
      return { type: 'RESUME_RUN' };
    case 'end_run':
      return typeof m.content === 'object' && m.content !== null ? undefined : { type: 'END_RUN' };
    default:
      return undefined;
  }
}
