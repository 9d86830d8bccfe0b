/** The lifecycles (run, slice, DAQ) as XState machines, their fast paths, folding and export. */
export * from './logic.js';
export * from './run.js';
export * from './runState.js';
export * from './slice.js';
export * from './daq.js';
export * from './fastPath.js';
export * from './fold.js';
export * from './registry.js';
export * from './export.js';
