/**
 * Carrying on a run whose process died (`swf run --resume`). Everything needed is in the log: the execution's
 * recorded configuration, the DAQ messages already sent (their ids are derived, so the DAQ can walk its program
 * again and send only what is missing), and the agents' checkpoints (their outputs committed with them).
 */
import { parseConfig, type LoadedConfig } from '../config/index.js';
import { IllegalStateError, isNotFoundError, NotFoundError, ValidationError } from '../errors.js';
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import { EXECUTION_IDS_STREAM, RUN_NUMBERS_STREAM, streams, type WorkflowExecutionStarted } from '../messages/index.js';
import { isImported } from './runtime.js';

export interface ResumePoint {
  execution_id: string;
  run_number: number;
  namespace: string;
  /** The OS user who started it: the agents carry on under the same names, so from their checkpoints. */
  executed_by: string;
  /** The configuration the execution recorded (a resumed run keeps it; `--set` does not apply). */
  config: LoadedConfig;
  /** The execution's WorkflowExecutionStarted: agents without a checkpoint start just before it. */
  started: StoredEvent;
  start_time: string;
  /** The latest clock time the run recorded (ms): a resumed virtual clock starts after it, never before. */
  last_clock_ms: number;
}

async function* stream(store: EventStore, name: string, backwards = false): AsyncGenerator<StoredEvent> {
  try {
    yield* store.readStream(name, backwards ? { direction: 'backwards', maxCount: 1 } : {});
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
}

/** A run number's allocation (run number and execution id), from the run number counter. */
async function allocation(
  store: EventStore,
  matches: (a: { run_number: number; execution_id: string }) => boolean,
): Promise<{ run_number: number; execution_id: string } | undefined> {
  for await (const e of stream(store, RUN_NUMBERS_STREAM)) {
    const d = e.data as { run_number?: unknown; execution_id?: unknown };
    if (typeof d.run_number !== 'number' || typeof d.execution_id !== 'string') continue;
    const a = { run_number: d.run_number, execution_id: d.execution_id };
    if (matches(a)) return a;
  }
  return undefined;
}

const TIME_KEYS = ['created_at', 'started_at', 'expired_at', 'finished_at', 'start_time'] as const;

function latestTime(e: StoredEvent): number {
  const d = e.data as Record<string, unknown> | null;
  let t = 0;
  if (d && typeof d === 'object') {
    for (const k of TIME_KEYS) {
      const v = d[k];
      if (typeof v === 'string') t = Math.max(t, Date.parse(v) || 0);
    }
  }
  return t;
}

/**
 * Where an unfinished execution stands. `target` is an execution id or a run number. Refuses an execution that
 * finished (conflict), one that came in by `swf import` (history), and an unknown one (not found).
 */
export async function resumePoint(store: EventStore, target: string): Promise<ResumePoint> {
  const trimmed = target.trim();
  if (trimmed === '') throw new ValidationError('--resume needs an execution id or a run number');
  const executionId = /^\d+$/.test(trimmed)
    ? (await allocation(store, (a) => a.run_number === Number(trimmed)))?.execution_id
    : trimmed;
  if (executionId === undefined) throw new NotFoundError(`run ${trimmed} not found in ${store.url}`);
  let started: StoredEvent | undefined;
  let finished: { status?: unknown } | undefined;
  for await (const e of stream(store, streams.execution(executionId))) {
    if (e.type === 'WorkflowExecutionStarted') started = e;
    else if (e.type === 'WorkflowExecutionFinished') finished = e.data as { status?: unknown };
  }
  if (!started) throw new NotFoundError(`execution ${executionId} not found in ${store.url}`);
  if (isImported(started))
    throw new IllegalStateError(`execution ${executionId} was imported: it is history, and no agent carries it on`);
  if (finished)
    throw new IllegalStateError(
      `execution ${executionId} already finished (${String(finished.status)}): there is nothing to resume`,
    );
  const s = started.data as WorkflowExecutionStarted;
  const parameterValues = s.parameter_values as LoadedConfig['parameterValues'];
  const config: LoadedConfig = {
    config: parseConfig(parameterValues, `execution ${executionId} parameter_values`),
    sources: { workflow: `execution ${executionId}`, includes: [], testbed: '', sets: [] },
    parameterValues,
  };
  const recorded = (s as { run_number?: unknown }).run_number;
  const runNumber =
    typeof recorded === 'number'
      ? recorded
      : (await allocation(store, (a) => a.execution_id === executionId))?.run_number;
  if (runNumber === undefined) throw new NotFoundError(`execution ${executionId} has no run number in ${store.url}`);
  const runId = String(runNumber);
  let last = Date.parse(s.start_time) || 0;
  for (const name of [
    streams.run(runId),
    streams.data(runId),
    streams.fastmon(runId),
    streams.fastproc(runId),
    streams.results(runId),
    streams.slices(runId),
  ]) {
    for await (const e of stream(store, name, true)) last = Math.max(last, latestTime(e));
  }
  return {
    execution_id: executionId,
    run_number: runNumber,
    namespace: s.namespace,
    executed_by: s.executed_by,
    config,
    started,
    start_time: s.start_time,
    last_clock_ms: last,
  };
}

/** An execution of the namespace that started and has not finished (and was not imported). */
export interface UnfinishedExecution {
  execution_id: string;
  /** The log position of its WorkflowExecutionStarted. */
  started_at: bigint;
}

/** The namespace's unfinished executions, oldest first (from the store's execution id counter). */
export async function unfinishedExecutions(store: EventStore, namespace: string): Promise<UnfinishedExecution[]> {
  const out: UnfinishedExecution[] = [];
  const ids: string[] = [];
  for await (const e of stream(store, EXECUTION_IDS_STREAM)) {
    const id = (e.data as { execution_id?: unknown }).execution_id;
    if (typeof id === 'string') ids.push(id);
  }
  for (const id of ids) {
    let started: StoredEvent | undefined;
    let finished = false;
    for await (const e of stream(store, streams.execution(id))) {
      if (e.type === 'WorkflowExecutionStarted') started = e;
      else if (e.type === 'WorkflowExecutionFinished') finished = true;
    }
    if (!started || finished || isImported(started)) continue;
    if ((started.data as { namespace?: unknown }).namespace !== namespace) continue;
    out.push({ execution_id: id, started_at: started.position });
  }
  return out.sort((a, b) => (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : 0));
}

/**
 * Where an agent with no checkpoint starts (`swf agent`): just before the first event of the namespace's oldest
 * unfinished execution, so that it takes part in every run in progress (it catches up from the log; its outputs'
 * ids are derived from their inputs, so nothing is done twice); with none, at the log's head (the runs that begin
 * after it). An agent with a checkpoint goes on from it whatever this says.
 */
export async function joinPoint(store: EventStore, namespace: string): Promise<'start' | bigint> {
  const head = await store.headPosition();
  const [oldest] = await unfinishedExecutions(store, namespace);
  if (oldest) return oldest.started_at > 0n ? oldest.started_at - 1n : 'start';
  return head ?? 'start';
}
