/**
 * What-if: a recorded run driven again with changed parameters. The run's DAQ announcements (its `run-<n>` stream:
 * run_imminent, start_run, stf_gen…, pause/resume, end_run) are appended again, at their recorded clock times
 * (`simulation_tick` from the execution's start), to a scratch store, where today's data, FastMon and fast
 * processing agents and the worker pool run in virtual time, reading the run's recorded configuration with the
 * overrides laid over it. The outcome (slices created / completed / failed, retries, duration) is compared with
 * the recorded one.
 *
 * The announcements keep their ids, run and execution ids, so with no override the scratch run repeats the
 * recorded one. Because the DAQ's messages are the recorded ones, overrides of the DAQ's own keys
 * (`[daq_state_machine]`, `stf_count`, the period and delay keys) cannot change anything; they are reported as
 * without effect.
 */
import type { Logger } from 'pino';
import {
  type Config,
  daqSchema,
  type JsonObject,
  type LoadedConfig,
  parseConfig,
  parseOverride,
} from '../config/index.js';
import { ValidationError } from '../errors.js';
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import { type Clock, VirtualClock } from '../agents/clock.js';
import type { DaqResult } from '../agents/daqSimulator.js';
import { dataAgent } from '../agents/dataAgent.js';
import { fastMonAgent } from '../agents/fastMonAgent.js';
import {
  fastProcessingAgent,
  type FastProcessingAgent,
  type FastProcessingOptions,
} from '../agents/fastProcessingAgent.js';
import { startWorkerPool } from '../agents/pandaWorker.js';
import { type RunningAgent, startAgent } from '../agents/runtime.js';
import { agentNames, RunStalledError, type RunSummary, summarize } from '../agents/workflow.js';
import { domainEvent, deriveId, streams, type WorkflowExecutionStarted } from '../messages/index.js';
import { recordedNames } from './check.js';
import type { RunInfo } from './runEvents.js';

/** One `--set` as applied to the recorded configuration. */
export interface Override {
  key: string;
  recorded: unknown;
  what_if: unknown;
  /** False for keys only the DAQ reads: its announcements are the recorded ones. */
  effective: boolean;
}

/** The outcome figures compared. */
export interface Outcome {
  status: string;
  stf_files: number;
  tf_samples: number;
  slices_created: number;
  slices_completed: number;
  slices_failed: number;
  retries: number;
  duration_s: number;
}

export interface WhatIfResult {
  run_number: number;
  execution_id: string;
  overrides: Override[];
  recorded: Outcome;
  what_if: Outcome;
  /** what_if − recorded, per figure (status: whether it changed). */
  difference: Omit<Outcome, 'status'> & { status_changed: boolean };
  /** Wall seconds the what-if run took. */
  wall_s: number;
}

export interface WhatIfOptions {
  logger: Logger;
  /** An empty scratch store (the composition root picks it: `memory:`). It is closed at the end. */
  scratch: () => Promise<EventStore>;
  /** Called with the scratch store and clock before the announcements start (e.g. to watch the run). */
  onStart?: (scratch: EventStore, clock: Clock, fp: FastProcessingAgent) => void;
  /** Watches the what-if run's run machine (`--inspect`). */
  onRunTransition?: FastProcessingOptions['onRunTransition'];
}

const DAQ_KEYS: ReadonlySet<string> = new Set(Object.keys(daqSchema.shape));

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The recorded `parameter_values` with the overrides laid over them, validated as a whole (an error names the
 * override's key). The namespace cannot change: the recorded announcements carry it.
 */
export function applyOverrides(
  parameterValues: unknown,
  sets: readonly string[],
): { config: LoadedConfig; overrides: Override[] } {
  if (!isTable(parameterValues))
    throw new ValidationError('the run recorded no parameter_values object', { field: 'parameter_values' });
  const merged = structuredClone(parameterValues);
  const overrides: Override[] = [];
  for (const spec of sets) {
    const { path, value } = parseOverride(spec);
    if (path[0] === 'testbed')
      throw new ValidationError(`--set ${spec}: the namespace is the recorded run's; a what-if cannot change it`, {
        file: '--set',
        section: 'testbed',
      });
    let table = merged;
    for (const part of path.slice(0, -1)) {
      if (!isTable(table[part])) table[part] = {};
      table = table[part] as Table;
    }
    const key = path[path.length - 1]!;
    const recorded = table[key];
    table[key] = value;
    const section = path[0]!;
    const effective = section === 'fast_processing' && !DAQ_KEYS.has(key);
    overrides.push({ key: path.join('.'), recorded: recorded ?? null, what_if: value, effective });
  }
  const config: Config = parseConfig(merged, 'the recorded parameter_values with --set');
  const json = JSON.parse(JSON.stringify(config)) as JsonObject;
  return {
    config: {
      config,
      sources: { workflow: 'recorded', includes: [], testbed: 'recorded', sets: [...sets] },
      parameterValues: json,
    },
    overrides,
  };
}

/** The DAQ's announcements of a run, in order, each with its clock offset (ms) from the execution's start. */
async function recordedAnnouncements(
  store: EventStore,
  info: RunInfo,
  startMs: number,
): Promise<{ event: StoredEvent; offsetMs: number }[]> {
  const out: { event: StoredEvent; offsetMs: number }[] = [];
  for await (const e of store.readStream(streams.run(info.run_id))) {
    const d = e.data as { simulation_tick?: unknown; created_at?: unknown };
    const offsetMs =
      typeof d.simulation_tick === 'number'
        ? Math.round(d.simulation_tick * 1000)
        : typeof d.created_at === 'string'
          ? Date.parse(d.created_at) - startMs
          : (out[out.length - 1]?.offsetMs ?? 0);
    out.push({ event: e, offsetMs: Math.max(offsetMs, out[out.length - 1]?.offsetMs ?? 0) });
  }
  return out;
}

export interface ReplayDaqOptions {
  store: EventStore;
  clock: Clock;
  /** The execution's WorkflowExecutionStarted, as the scratch run starts with it (its parameter_values). */
  started: WorkflowExecutionStarted & { id: string; metadata: unknown };
  /** The recorded announcements with their offsets from `startMs`. */
  announcements: readonly { event: StoredEvent; offsetMs: number }[];
  startMs: number;
  run_number: number;
  stopRequested?: Promise<void>;
}

/** A recorded event's metadata for the scratch run: an imported run's inputs are live there, for its agents to act on. */
function live(metadata: unknown): unknown {
  if (typeof metadata !== 'object' || metadata === null || !('imported' in metadata)) return metadata;
  const { imported: _imported, ...rest } = metadata as Record<string, unknown>;
  return rest;
}

/**
 * The DAQ of a what-if: the execution's start, then each recorded announcement at its recorded clock time (same
 * ids, stamped by this clock), then the wait for the run's RunFinished, then the execution's end.
 */
export async function replayDaq(options: ReplayDaqOptions): Promise<DaqResult> {
  const { store, clock, started } = options;
  const executionId = started.execution_id;
  const runId = String(options.run_number);
  const { id, metadata, ...data } = started;
  await store.appendToStream(
    streams.execution(executionId),
    [{ id, type: 'WorkflowExecutionStarted', data: { ...data, start_time: clock.iso() }, metadata: live(metadata) }],
    { expectedRevision: 'no_stream' },
  );
  let revision: bigint | 'no_stream' = 'no_stream';
  let runImminentAt: string | undefined;
  let stfs = 0;
  for (const { event, offsetMs } of options.announcements) {
    await clock.sleepUntil(options.startMs + offsetMs);
    const now = clock.iso();
    const d = event.data as Table;
    const stamped: Table = { ...d, created_at: now, ...('timestamp' in d ? { timestamp: now } : {}) };
    if (event.type === 'run_imminent') runImminentAt ??= now;
    if (event.type === 'stf_gen') stfs++;
    const r = await store.appendToStream(
      streams.run(runId),
      [{ id: event.id, type: event.type, data: stamped, metadata: live(event.metadata) }],
      { expectedRevision: revision },
    );
    revision = r.nextRevision;
  }
  const finished = await waitForRunFinished(store, clock, runId);
  const endedAt = clock.iso();
  const status = finished ? 'completed' : 'terminated';
  await store.appendToStream(streams.execution(executionId), [
    domainEvent(
      'WorkflowExecutionFinished',
      { execution_id: executionId, status, end_time: endedAt },
      {
        id: deriveId(id, 'finished'),
        namespace: started.namespace,
        cause: { id },
        executionId,
        runNumber: options.run_number,
      },
    ),
  ]);
  return {
    execution_id: executionId,
    run_number: options.run_number,
    status,
    started_at: new Date(options.startMs).toISOString(),
    ...(runImminentAt !== undefined ? { run_imminent_at: runImminentAt } : {}),
    ended_at: endedAt,
    stf_files: stfs,
  };
}

async function waitForRunFinished(store: EventStore, clock: Clock, runId: string): Promise<boolean> {
  const sub = store.subscribeToStream(streams.fastproc(runId));
  const iterator = sub[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await clock.idle(iterator.next());
      if (next.done) return false;
      if (next.value.type === 'RunFinished') return true;
    }
  } finally {
    await sub.unsubscribe();
  }
}

const outcomeOf = (s: RunSummary): Outcome => ({
  status: s.status,
  stf_files: s.stf_files,
  tf_samples: s.tf_samples,
  slices_created: s.slices.created,
  slices_completed: s.slices.completed,
  slices_failed: s.slices.failed,
  retries: s.slices.retried,
  duration_s: s.duration_s,
});

/** The recorded run's outcome, read from the log as `swf run` summarizes it. */
async function recordedOutcome(store: EventStore, info: RunInfo, started: WorkflowExecutionStarted): Promise<Outcome> {
  let status: DaqResult['status'] = 'completed';
  let endedAt = started.start_time;
  for await (const e of store.readStream(streams.execution(info.execution_id))) {
    if (e.type !== 'WorkflowExecutionFinished') continue;
    const d = e.data as { status: string; end_time: string };
    status = d.status === 'completed' || d.status === 'terminated' ? d.status : 'failed';
    endedAt = d.end_time;
  }
  const daq: DaqResult = {
    execution_id: info.execution_id,
    run_number: info.run_number,
    status,
    started_at: started.start_time,
    ended_at: endedAt,
    stf_files: 0,
  };
  const after = info.started!.position > 0n ? info.started!.position - 1n : undefined;
  return outcomeOf(await summarize(store, daq, info.namespace, after, 0));
}

/** Runs the what-if of `info` with `sets` and compares it with the recorded run. */
export async function whatIf(
  store: EventStore,
  info: RunInfo,
  sets: readonly string[],
  options: WhatIfOptions,
): Promise<WhatIfResult> {
  if (!info.started)
    throw new ValidationError(`run ${info.run_id}: its execution's WorkflowExecutionStarted is not in ${store.url}`);
  const startedEvent = info.started;
  const startedData = startedEvent.data as WorkflowExecutionStarted;
  const { config, overrides } = applyOverrides(startedData.parameter_values, sets);
  const startMs = Date.parse(startedData.start_time);
  const announcements = await recordedAnnouncements(store, info, startMs);
  const recorded = await recordedOutcome(store, info, startedData);
  const names = await recordedNames(store, info);
  const workerPrefix = agentNames(info.executed_by ?? 'swf').workerPrefix;

  const wallStart = performance.now();
  const scratch = await options.scratch();
  try {
    let stall: (e: Error) => void = () => {};
    const stalled = new Promise<never>((_, reject) => (stall = reject));
    const clock = new VirtualClock(startMs, () =>
      stall(new RunStalledError('the what-if run could not finish: every agent is waiting and nothing is scheduled')),
    );
    const namespace = info.namespace;
    const common = { store: scratch, clock, logger: options.logger, startFrom: 'start' as const };
    const fp = fastProcessingAgent(
      { name: names.fast_processing, type: 'Fast_Processing', namespace },
      options.onRunTransition ? { onRunTransition: options.onRunTransition } : {},
    );
    const running: RunningAgent[] = [
      startAgent(dataAgent({ name: names.data, type: 'DATA', namespace }), common),
      startAgent(fastMonAgent({ name: names.fastmon, type: 'fastmon', namespace }), common),
      startAgent(fp, common),
    ];
    const pool = startWorkerPool({ ...common, namespace, namePrefix: workerPrefix });
    const failures = Promise.race([...running.map((r) => r.done), pool.done]).then(() => {
      throw new Error('an agent stopped before the what-if run finished');
    });
    options.onStart?.(scratch, clock, fp);
    let daq: DaqResult;
    try {
      daq = await Promise.race([
        clock.task(() =>
          replayDaq({
            store: scratch,
            clock,
            started: {
              ...startedData,
              parameter_values: config.parameterValues,
              id: startedEvent.id,
              metadata: startedEvent.metadata,
            },
            announcements,
            startMs,
            run_number: info.run_number,
          }),
        ),
        stalled,
        failures,
      ]);
    } finally {
      clock.shutdown();
      await Promise.all(running.map((r) => r.stop()));
      await pool.stop();
    }
    const whatIfOutcome = outcomeOf(await summarize(scratch, daq, namespace, undefined, 0));
    const round = (n: number): number => Math.round(n * 100) / 100;
    return {
      run_number: info.run_number,
      execution_id: info.execution_id,
      overrides,
      recorded,
      what_if: whatIfOutcome,
      difference: {
        status_changed: whatIfOutcome.status !== recorded.status,
        stf_files: whatIfOutcome.stf_files - recorded.stf_files,
        tf_samples: whatIfOutcome.tf_samples - recorded.tf_samples,
        slices_created: whatIfOutcome.slices_created - recorded.slices_created,
        slices_completed: whatIfOutcome.slices_completed - recorded.slices_completed,
        slices_failed: whatIfOutcome.slices_failed - recorded.slices_failed,
        retries: whatIfOutcome.retries - recorded.retries,
        duration_s: round(whatIfOutcome.duration_s - recorded.duration_s),
      },
      wall_s: Math.round(((performance.now() - wallStart) / 1000) * 1000) / 1000,
    };
  } finally {
    await scratch.close();
  }
}

/** The comparison as a table for a terminal. */
export function formatWhatIf(r: WhatIfResult): string {
  const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  const lines = [`What-if for run ${r.run_number} (execution ${r.execution_id}), driven again with:`];
  for (const o of r.overrides) {
    lines.push(
      `  ${o.key} = ${show(o.what_if)} (recorded ${show(o.recorded)})${o.effective ? '' : ' — no effect: the DAQ announcements are the recorded ones'}`,
    );
  }
  const rows: [string, keyof Omit<Outcome, 'status'>][] = [
    ['STF files', 'stf_files'],
    ['TF samples', 'tf_samples'],
    ['Slices created', 'slices_created'],
    ['Slices completed', 'slices_completed'],
    ['Slices failed', 'slices_failed'],
    ['Retries', 'retries'],
    ['Duration (s)', 'duration_s'],
  ];
  const sign = (n: number): string => (n > 0 ? `+${n}` : n === 0 ? '0' : String(n));
  const pad = (s: string, n: number): string => s.padStart(n);
  lines.push(`${''.padEnd(18)}${pad('recorded', 10)}${pad('what-if', 10)}${pad('difference', 12)}`);
  for (const [label, k] of rows) {
    lines.push(
      `${label.padEnd(18)}${pad(String(r.recorded[k]), 10)}${pad(String(r.what_if[k]), 10)}${pad(sign(r.difference[k]), 12)}`,
    );
  }
  lines.push(
    `${'Status'.padEnd(18)}${pad(r.recorded.status, 10)}${pad(r.what_if.status, 10)}${pad(r.difference.status_changed ? 'changed' : '-', 12)}`,
  );
  lines.push(`(what-if run in virtual time on a scratch store: ${r.wall_s} s wall)`);
  return lines.join('\n') + '\n';
}
