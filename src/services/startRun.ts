/**
 * Start a run and return once it has its execution id and run number, the run going on in the background (an MCP
 * tool's `start_workflow`: the assistant gets the ids at once and follows the run with the read tools). The run is
 * `swf run`'s: every agent in this process, in virtual time (as fast as the machine allows) or in realtime.
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/index.js';
import { ValidationError } from '../errors.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { type RunSummary, runWorkflow } from '../agents/workflow.js';

export interface StartRunRequest {
  /** Configuration name or path (`swf run --config`); default: the testbed's. */
  config?: string;
  /** `section.key=value` overrides, as `swf run --set`. */
  set?: readonly string[];
  /** Paced by the configured delays (divided by `speed`) instead of virtual time. */
  realtime?: boolean;
  speed?: number;
  /** Only the DAQ: `swf agent` processes run the agents. */
  daqOnly?: boolean;
}

export interface StartRunDeps {
  store: EventStore;
  logger: Logger;
  user: string;
  /** Loads a configuration (the composition root knows the working directory and environment). */
  loadConfig(name: string | undefined, set: readonly string[]): LoadedConfig;
  /** The agents' (and the DAQ's) heartbeat period, wall seconds (`SWF_HEARTBEAT_SECONDS`); undefined: start and exit only. */
  heartbeatSeconds?: number;
}

export interface StartedRun {
  execution_id: string;
  run_number: number;
  mode: 'virtual' | 'realtime';
  /** Settles when the run has ended (its summary) or failed. */
  finished: Promise<RunSummary>;
  /** Asks the run to stop (as Ctrl-C does to `swf run`). */
  stop(): void;
}

export async function startRunInBackground(deps: StartRunDeps, request: StartRunRequest): Promise<StartedRun> {
  const config = deps.loadConfig(request.config, request.set ?? []);
  if (request.speed !== undefined && !(request.speed > 0 && request.speed <= 1000))
    throw new ValidationError(`speed must be above 0 and at most 1000, got ${request.speed}`, { field: 'speed' });
  const mode = request.realtime || request.speed !== undefined || request.daqOnly ? 'realtime' : 'virtual';
  let stop: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (stop = resolve));
  let started: (ids: { execution_id: string; run_number: number }) => void = () => {};
  const ids = new Promise<{ execution_id: string; run_number: number }>((resolve) => (started = resolve));
  const finished = runWorkflow({
    store: deps.store,
    config,
    logger: deps.logger,
    user: deps.user,
    mode,
    ...(request.speed !== undefined ? { speed: request.speed } : {}),
    daqOnly: request.daqOnly === true,
    stopRequested,
    ...(deps.heartbeatSeconds !== undefined ? { heartbeatSeconds: deps.heartbeatSeconds } : {}),
    onProgress: (p) => {
      if (p.execution_id !== undefined && p.run_number !== undefined)
        started({ execution_id: p.execution_id, run_number: p.run_number });
    },
  });
  // A virtual run may end before the first progress report: its summary has the ids too.
  const first = await Promise.race([
    ids,
    finished.then((s) => ({ execution_id: s.execution_id, run_number: s.run_number })),
  ]);
  finished.catch((e: unknown) => deps.logger.error({ err: e, execution_id: first.execution_id }, 'run failed'));
  return { ...first, mode, finished, stop };
}
