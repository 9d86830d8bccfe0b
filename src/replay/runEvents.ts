/**
 * Which events belong to a run, and how to read them from the log.
 *
 * A run's events: the streams `run-<n>`, `data-<n>`, `fastmon-<n>`, `fastproc-<n>`, `slices-<n>`, `results-<n>`
 * (the workers' reports) and its execution's stream `execution-<execution_id>`.
 * Bundles (and the determinism check) also take the agents' heartbeats and logs that carry the execution id
 * (`agent-*`), and the counter events that allocated the run number and the execution id.
 */
import { isNotFoundError, NotFoundError } from '../errors.js';
import type { EventStore, ReadAllOptions, StoredEvent } from '../eventStore/eventStore.js';
import {
  EXECUTION_IDS_STREAM,
  LEGACY_WORKER_PREFIX,
  runKey,
  RUN_NUMBERS_STREAM,
  STREAM_PREFIXES,
  streams,
  type WorkflowExecutionStarted,
} from '../messages/index.js';

export interface RunInfo {
  run_number: number;
  run_id: string;
  execution_id: string;
  namespace: string;
  /** The hash of the machine definitions the run recorded (WorkflowExecutionStarted). */
  machine_hash: string | undefined;
  executed_by: string | undefined;
  /** The execution's first event (WorkflowExecutionStarted), where the run's events begin in the log. */
  started: StoredEvent | undefined;
}

async function firstOf(store: EventStore, stream: string): Promise<StoredEvent | undefined> {
  try {
    for await (const e of store.readStream(stream, { maxCount: 1 })) return e;
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return undefined;
}

/** Finds a run by number: its execution (from the DAQ's first message, else the run number counter). */
export async function locateRun(store: EventStore, run: string | number): Promise<RunInfo> {
  const runId = runKey(typeof run === 'number' ? String(run) : run.trim());
  const runNumber = Number(runId);
  let executionId: string | undefined;
  const first = await firstOf(store, streams.run(runId));
  const d = first?.data as { execution_id?: unknown } | undefined;
  if (typeof d?.execution_id === 'string') executionId = d.execution_id;
  if (executionId === undefined) {
    try {
      for await (const e of store.readStream(RUN_NUMBERS_STREAM)) {
        const a = e.data as { run_number?: unknown; execution_id?: unknown };
        if (a.run_number === runNumber && typeof a.execution_id === 'string') executionId = a.execution_id;
      }
    } catch (e: unknown) {
      if (!isNotFoundError(e)) throw e;
    }
  }
  if (executionId === undefined) throw new NotFoundError(`run ${runId} not found in ${store.url}`);
  const started = await firstOf(store, streams.execution(executionId));
  const s = started?.type === 'WorkflowExecutionStarted' ? (started.data as WorkflowExecutionStarted) : undefined;
  const meta = first?.metadata as { namespace?: unknown } | undefined;
  return {
    run_number: runNumber,
    run_id: runId,
    execution_id: executionId,
    namespace: s?.namespace ?? (typeof meta?.namespace === 'string' ? meta.namespace : 'swf-es'),
    machine_hash: s?.machine_hash,
    executed_by: s?.executed_by,
    started: started?.type === 'WorkflowExecutionStarted' ? started : undefined,
  };
}

export interface RunEventsOptions {
  /** Also the agents' heartbeats and logs carrying the execution id (`agent-*`). */
  agents?: boolean;
  /** Skip damaged events, reporting each (`swf export --skip-damaged`); without it, one is an error. */
  onDamaged?: ReadAllOptions['onDamaged'];
}

/** A matcher for a run's events, and the stream prefixes to read the log with. */
export function runScope(
  info: RunInfo,
  options: RunEventsOptions = {},
): { prefixes: string[]; belongs: (e: StoredEvent) => boolean } {
  const own = new Set([
    streams.run(info.run_id),
    streams.data(info.run_id),
    streams.fastmon(info.run_id),
    streams.fastproc(info.run_id),
    streams.slices(info.run_id),
    streams.results(info.run_id),
    streams.execution(info.execution_id),
  ]);
  const prefixes = [...own, LEGACY_WORKER_PREFIX, ...(options.agents ? [STREAM_PREFIXES.agent] : [])];
  const belongs = (e: StoredEvent): boolean => {
    const name = e.streamName;
    if (own.has(name)) return true;
    // Agents (and, in older logs, workers) serve every run: their events name theirs in the metadata (read without
    // parsing data).
    if (name.startsWith(LEGACY_WORKER_PREFIX))
      return (e.metadata as { runNumber?: unknown } | null)?.runNumber === info.run_number;
    if (options.agents && name.startsWith(STREAM_PREFIXES.agent))
      return (e.metadata as { executionId?: unknown } | null)?.executionId === info.execution_id;
    return false;
  };
  return { prefixes, belongs };
}

/** The run's events in log order (from its execution's start), optionally stopping after position `until`. */
export async function* readRunEvents(
  store: EventStore,
  info: RunInfo,
  options: RunEventsOptions & { until?: bigint } = {},
): AsyncGenerator<StoredEvent> {
  const { prefixes, belongs } = runScope(info, options);
  const from = info.started?.position ?? 'start';
  const onDamaged = options.onDamaged;
  for await (const e of store.readAll({
    from,
    filter: { streamPrefix: prefixes },
    ...(onDamaged ? { onDamaged } : {}),
  })) {
    if (options.until !== undefined && e.position > options.until) return;
    if (belongs(e)) yield e;
  }
}

/** The counter events that allocated this run's number and execution id. */
export async function counterEvents(store: EventStore, info: RunInfo): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (const stream of [EXECUTION_IDS_STREAM, RUN_NUMBERS_STREAM]) {
    try {
      for await (const e of store.readStream(stream)) {
        const d = e.data as { execution_id?: unknown; run_number?: unknown };
        if (
          d.execution_id === info.execution_id &&
          (stream === EXECUTION_IDS_STREAM || d.run_number === info.run_number)
        )
          out.push(e);
      }
    } catch (e: unknown) {
      if (!isNotFoundError(e)) throw e;
    }
  }
  return out;
}

/** The fields of an event's data that carry the workflow clock's time. */
export const TIME_KEYS = [
  'created_at',
  'timestamp',
  'started_at',
  'finished_at',
  'expired_at',
  'start_time',
  'end_time',
  'requested_at',
] as const;

/** The workflow clock's time of an event (from its data), in ms; undefined when it carries none. */
export function clockTimeOf(e: StoredEvent): number | undefined {
  const d = e.data as Record<string, unknown> | null;
  if (!d || typeof d !== 'object') return undefined;
  for (const k of TIME_KEYS) {
    const v = d[k];
    if (typeof v === 'string') {
      const t = Date.parse(v);
      if (Number.isFinite(t)) return t;
    }
  }
  return undefined;
}
