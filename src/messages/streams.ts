/**
 * Stream names. One place decides where each event lives, so agents, projections and replay agree.
 *
 * | Stream | Holds |
 * |---|---|
 * | `execution-<execution_id>` | WorkflowExecutionStarted/Finished, StopRequested |
 * | `run-<run>` | the DAQ lifecycle (run_imminent, start_run, stf_gen, pause_run, resume_run, end_run) |
 * | `data-<run>` | stf_ready, DatasetOpened/Closed |
 * | `fastmon-<run>` | tf_file_registered |
 * | `fastproc-<run>` | run_imminent_worker, the workers' end_run, SliceLeaseExpired, RunTransitionRefused, the fast processing agent's MessageRejected |
 * | `slices-<run>` | slice (the queue the workers consume as a competing-consumer group) |
 * | `results-<run>` | SliceProcessingStarted, slice_result: every worker of the run writes here (many writers) |
 * | `agent-<agent>` | agent_heartbeat, agent_log (and that agent's MessageRejected when it has no run) |
 * | `swf-run-numbers`, `swf-execution-ids` | the counters |
 */
import { ValidationError } from '../errors.js';
import { isWorkerEndRun } from './parse.js';
import type { Message } from './schemas.js';

/** The store's rule for stream names (letters, digits and `. _ : @ + = -`, at most 200, no leading symbol). */
export const STREAM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$/;

export const isValidStreamName = (name: unknown): name is string =>
  typeof name === 'string' && STREAM_NAME_PATTERN.test(name);

export function assertStreamName(name: unknown): asserts name is string {
  if (!isValidStreamName(name)) {
    throw new ValidationError(
      `invalid stream name ${JSON.stringify(name)}: use 1-200 characters from A-Z a-z 0-9 . _ : @ + = -, starting with a letter or digit`,
      { field: 'stream' },
    );
  }
}

export const STREAM_PREFIXES = {
  execution: 'execution-',
  run: 'run-',
  data: 'data-',
  fastmon: 'fastmon-',
  fastproc: 'fastproc-',
  slices: 'slices-',
  results: 'results-',
  agent: 'agent-',
} as const;
export type StreamKind = keyof typeof STREAM_PREFIXES;

/**
 * Logs written before the workers reported to `results-<run>` have a stream per worker, `worker-<worker>`, shared by
 * every run it worked for (the run in each event's metadata). Replay and bundles still read them.
 */
export const LEGACY_WORKER_PREFIX = 'worker-';

/** The counter streams. */
export const RUN_NUMBERS_STREAM = 'swf-run-numbers';
/** Run numbers start here and go up by one per run in a store (the counter stream's revision is added). */
export const FIRST_RUN_NUMBER = 100010;
export const EXECUTION_IDS_STREAM = 'swf-execution-ids';

/** A run number as given anywhere (message `run_id` string, number, bigint) → its canonical digits. */
export function runKey(run: string | number | bigint): string {
  const s = typeof run === 'string' ? run : run.toString();
  if (!/^[0-9]+$/.test(s)) {
    throw new ValidationError(`invalid run number ${JSON.stringify(s)}: expected digits`, { field: 'run_id' });
  }
  return s;
}

function named(prefix: string, key: string): string {
  const name = `${prefix}${key}`;
  assertStreamName(name);
  return name;
}

export const streams = {
  execution: (executionId: string): string => named(STREAM_PREFIXES.execution, executionId),
  run: (run: string | number | bigint): string => named(STREAM_PREFIXES.run, runKey(run)),
  data: (run: string | number | bigint): string => named(STREAM_PREFIXES.data, runKey(run)),
  fastmon: (run: string | number | bigint): string => named(STREAM_PREFIXES.fastmon, runKey(run)),
  fastproc: (run: string | number | bigint): string => named(STREAM_PREFIXES.fastproc, runKey(run)),
  slices: (run: string | number | bigint): string => named(STREAM_PREFIXES.slices, runKey(run)),
  results: (run: string | number | bigint): string => named(STREAM_PREFIXES.results, runKey(run)),
  agent: (agent: string): string => named(STREAM_PREFIXES.agent, agent),
} as const;

/**
 * Streams with many writers, appended to with expected revision `any`: a run's workers all report to its
 * `results-<run>` stream, as the testbed's workers share one results queue. Every other stream has one writer,
 * which appends with exact expected revisions.
 */
export const hasManyWriters = (name: string): boolean => name.startsWith(STREAM_PREFIXES.results);

/** Which kind of stream a name is, and its key (run number, execution id, worker or agent name). */
export function parseStreamName(name: string): { kind: StreamKind; key: string } | undefined {
  for (const [kind, prefix] of Object.entries(STREAM_PREFIXES) as [StreamKind, string][]) {
    if (name.startsWith(prefix) && name.length > prefix.length) return { kind, key: name.slice(prefix.length) };
  }
  return undefined;
}

/** The stream a message is appended to. */
export function streamForMessage(m: Message): string {
  switch (m.msg_type) {
    case 'run_imminent':
    case 'start_run':
    case 'stf_gen':
    case 'pause_run':
    case 'resume_run':
      return streams.run(m.run_id);
    case 'end_run':
      return isWorkerEndRun(m) ? streams.fastproc(m.run_id) : streams.run(m.run_id);
    case 'stf_ready':
      return streams.data(m.run_id);
    case 'tf_file_registered':
      return streams.fastmon(m.run_id);
    case 'run_imminent_worker':
      return streams.fastproc(m.run_id);
    case 'slice':
      return streams.slices(m.run_id);
    case 'slice_result':
      return streams.results(m.run_id);
    case 'agent_heartbeat':
    case 'agent_log':
      return streams.agent(m.instance_name);
    default: {
      const never: never = m;
      throw new ValidationError(`no stream for ${JSON.stringify(never)}`);
    }
  }
}
