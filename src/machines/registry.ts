/** The machines by name, their compiled fast paths, and loading a recorded definition back into a machine. */
import type { AnyStateMachine } from 'xstate';
import { ValidationError } from '../errors.js';
import { daqLogic, daqMachine, daqSetup, type DaqContext, type DaqEvent } from './daq.js';
import { compileMachine, type CompiledMachine } from './fastPath.js';
import { runLogic, runMachine, runSetup, type RunContext, type RunEvent } from './run.js';
import {
  initialSliceContext,
  sliceLogic,
  sliceMachine,
  sliceSetup,
  type SliceContext,
  type SliceEvent,
  type SliceInput,
} from './slice.js';

export const MACHINE_NAMES = ['run', 'slice', 'daq'] as const;
export type MachineName = (typeof MACHINE_NAMES)[number];

export const isMachineName = (name: unknown): name is MachineName =>
  typeof name === 'string' && (MACHINE_NAMES as readonly string[]).includes(name);

export function assertMachineName(name: unknown): asserts name is MachineName {
  if (!isMachineName(name)) {
    throw new ValidationError(`unknown machine ${JSON.stringify(name)}: expected one of ${MACHINE_NAMES.join(', ')}`, {
      field: 'machine',
    });
  }
}

export const machines = { run: runMachine, slice: sliceMachine, daq: daqMachine } as const;

export const machineLogic = { run: runLogic, slice: sliceLogic, daq: daqLogic } as const;

/** The fast paths, compiled once from the machines. */
export const fastRun: CompiledMachine<RunContext, RunEvent> = compileMachine(runMachine, runLogic);
export const fastSlice: CompiledMachine<SliceContext, SliceEvent, SliceInput> = compileMachine(
  sliceMachine,
  sliceLogic,
);
export const fastDaq: CompiledMachine<DaqContext, DaqEvent> = compileMachine(daqMachine, daqLogic);

/** What the default input gives as the initial context (the context a JSON definition carries). */
export function defaultContext(name: MachineName): unknown {
  return name === 'slice' ? initialSliceContext() : (machines[name].config as { context: unknown }).context;
}

/**
 * A machine from a recorded definition (`machineDefinitions()` of an older run), with today's implementations of
 * its named actions and guards. Lets a replay run with the rules a run was recorded with.
 */
export function machineFromDefinition(name: MachineName, definition: unknown): AnyStateMachine {
  assertMachineName(name);
  if (typeof definition !== 'object' || definition === null) {
    throw new ValidationError(`machine definition of '${name}' must be an object`, { field: name });
  }
  const def = definition as Record<string, unknown>;
  // Loosely typed on purpose: the recorded config is data, checked by XState when it builds the machine.
  type AnySetup = { createMachine(config: unknown): AnyStateMachine };
  switch (name) {
    case 'run':
      return (runSetup as unknown as AnySetup).createMachine(def);
    case 'daq':
      return (daqSetup as unknown as AnySetup).createMachine(def);
    case 'slice': {
      const recorded = (def.context ?? {}) as Partial<SliceContext>;
      return (sliceSetup as unknown as AnySetup).createMachine({
        ...def,
        context: ({ input }: { input?: SliceInput }) => ({
          ...initialSliceContext(),
          ...recorded,
          ...(input?.max_retries !== undefined ? { max_retries: input.max_retries } : {}),
        }),
      });
    }
  }
}

/**
 * The fast paths of machines rebuilt from recorded definitions (a run's `machine_definitions`), with today's
 * named guards and actions: replaying "with the recorded rules".
 */
export function compileRecorded(definitions: unknown): {
  run: CompiledMachine<RunContext, RunEvent>;
  slice: CompiledMachine<SliceContext, SliceEvent, SliceInput>;
} {
  if (typeof definitions !== 'object' || definitions === null) {
    throw new ValidationError('the run recorded no machine definitions', { field: 'machine_definitions' });
  }
  const defs = definitions as Record<string, unknown>;
  return {
    run: compileMachine(machineFromDefinition('run', defs.run), runLogic),
    slice: compileMachine<SliceContext, SliceEvent, SliceInput>(machineFromDefinition('slice', defs.slice), sliceLogic),
  };
}
