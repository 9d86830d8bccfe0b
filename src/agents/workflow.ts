/**
 * A complete fast processing run in one process: the DAQ simulator, the data, FastMon and fast processing agents
 * and the worker pool, all on one store and one clock. `swf run` calls this; so do the tests and benchmarks.
 */
import { hostname as osHostname } from 'node:os';
import type { Logger } from 'pino';
import { daqParameters, type LoadedConfig } from '../config/index.js';
import { ValidationError } from '../errors.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { RunContext } from '../machines/index.js';
import { MESSAGE_TYPES, rateToMillionths } from '../messages/index.js';
import { type Clock, RealClock, VirtualClock } from './clock.js';
import { dataAgent } from './dataAgent.js';
import { type DaqResult, runDaq } from './daqSimulator.js';
import { fastMonAgent } from './fastMonAgent.js';
import { type FastProcessingAgent, fastProcessingAgent, type FastProcessingOptions } from './fastProcessingAgent.js';
import type { ResumePoint } from './resume.js';
import { startWorkerPool } from './pandaWorker.js';
import { type RunningAgent, decide, startAgent, isImported } from './runtime.js';
import { AgentRoster, STALE_AFTER_MS, watchAgents } from './health.js';

export interface AgentNames {
  daq: string;
  data: string;
  fastmon: string;
  fastProcessing: string;
  workerPrefix: string;
}

/** The testbed's names (`<type>-agent-<user>`), without its global counter so that runs are reproducible. */
export const agentNames = (user: string): AgentNames => ({
  daq: `daq_simulator-agent-${user}`,
  data: `data-agent-${user}`,
  fastmon: `fastmon-agent-${user}`,
  fastProcessing: `fast_processing-agent-${user}`,
  workerPrefix: `panda-worker-${user}`,
});

export interface Progress {
  execution_id?: string;
  run_number?: number;
  stf_files: number;
  phase: string;
  run?: RunContext;
  /** Whether the run is finished: data taking ended (phase `completed`) and every slice is final. */
  finished?: boolean;
  /** The slices the run will have, when the configuration says (count mode): for a progress bar. */
  expected_slices?: number;
  /** `--daq-only`: the kinds of agent with no live agent seen right now (from their heartbeats). */
  missing_agents?: string[];
}

/** The agent kinds a `--daq-only` run needs, by the `agent_type` their heartbeats carry. */
export const AGENT_KINDS = [
  { type: 'DATA', command: 'swf agent data' },
  { type: 'fastmon', command: 'swf agent fastmon' },
  { type: 'Fast_Processing', command: 'swf agent fast-processing' },
  { type: 'PanDA-worker', command: 'swf agent worker' },
] as const;

/** A `--daq-only` run that ended because a kind of agent stayed missing for `wait_seconds`. */
export interface GaveUp {
  missing: string[];
  wait_seconds: number;
}

export interface RunWorkflowOptions {
  store: EventStore;
  config: LoadedConfig;
  logger: Logger;
  user: string;
  /** 'virtual' (default): as fast as the machine allows; 'realtime': paced, divided by `speed`. */
  mode?: 'virtual' | 'realtime';
  speed?: number;
  /** Only the DAQ: the agents and workers run elsewhere (`swf agent ...`). */
  daqOnly?: boolean;
  /** Resolves on Ctrl-C. */
  stopRequested?: Promise<void>;
  onProgress?: (p: Progress) => void;
  /**
   * Carry on this unfinished execution (`swf run --resume`, see resume.ts) instead of starting a run: its recorded
   * configuration and user replace `config` and `user`.
   */
  resume?: ResumePoint;
  /** Watches the run machines live (`swf run --inspect`): told of each transition the fast processing agent takes. */
  inspect?: Pick<FastProcessingOptions, 'onRunTransition'>;
  /** Heartbeat period of every agent, the DAQ and the workers, in wall-clock seconds; undefined: start and exit only. */
  heartbeatSeconds?: number;
  /**
   * `--daq-only`: how long (wall seconds) a kind of agent may have no live agent before the run gives up (end_run,
   * execution terminated, `gave_up` in the summary). Default 120.
   */
  agentWaitSeconds?: number;
  /** `--daq-only`: a kind of agent went missing (or came back); default: nothing. */
  onAgentsMissing?: (missing: string[], waitSeconds: number) => void;
}

export const DEFAULT_AGENT_WAIT_SECONDS = 120;
/** How long a kind of agent may be missing before `--daq-only` says so (wall ms): agents started at once with it. */
const MISSING_GRACE_MS = 3000;

export interface RunSummary {
  execution_id: string;
  run_number: number;
  namespace: string;
  status: DaqResult['status'];
  phase: string;
  stf_files: number;
  tf_samples: number;
  slices: { created: number; completed: number; failed: number; retried: number };
  messages: Record<string, number>;
  agents: string[];
  duration_s: number;
  wall_s: number;
  store: string;
  events: number;
  /** Set when `--daq-only` gave up waiting for a kind of agent. */
  gave_up?: GaveUp;
}

export class RunStalledError extends Error {}

/** The `[agents]` entries of the agents `swf run` runs itself. */
const RUN_AGENTS = ['data', 'fastmon', 'fast_processing'] as const;

export async function runWorkflow(options: RunWorkflowOptions): Promise<RunSummary> {
  const wallStart = performance.now();
  const { store, logger, resume } = options;
  const config = resume?.config ?? options.config;
  const user = resume?.executed_by ?? options.user;
  if (!options.daqOnly) {
    // A disabled agent would leave the run waiting forever for its messages: refused, with the way to do it.
    for (const name of RUN_AGENTS) {
      if (config.config.agents?.[name]?.enabled === false)
        throw new ValidationError(
          `[agents] ${name}.enabled = false: swf run runs the data, FastMon and fast processing agents itself; to run one elsewhere, use swf run --daq-only with a swf agent process for each agent`,
          { section: 'agents', key: `${name}.enabled`, field: `agents.${name}.enabled` },
        );
    }
  }
  // The testbed's [agents.<name>] keys are honoured (data, fastmon, fast_processing; enabled) or refused: swf-es runs
  // its own agents, not the testbed's scripts, and has no other agent.
  for (const [name, entry] of Object.entries(config.config.agents ?? {})) {
    if (entry.script !== undefined)
      throw new ValidationError(
        `[agents] ${name}.script = ${JSON.stringify(entry.script)}: swf-es runs its own agents (swf run, swf agent), not the testbed's scripts; remove the key`,
        { section: 'agents', key: `${name}.script`, field: `agents.${name}.script` },
      );
    if (!(RUN_AGENTS as readonly string[]).includes(name) && entry.enabled !== false)
      throw new ValidationError(
        `[agents] ${name}: swf-es has no '${name}' agent (it runs ${RUN_AGENTS.join(', ')}, the DAQ and the PanDA workers); remove the section or set ${name}.enabled = false`,
        { section: 'agents', key: name, field: `agents.${name}` },
      );
  }
  const namespace = config.config.testbed.namespace;
  const names = agentNames(user);
  let stall: (e: Error) => void = () => {};
  const stalled = new Promise<never>((_, reject) => (stall = reject));
  const clock: Clock =
    (options.mode ?? 'virtual') === 'virtual'
      ? // A resumed run's clock goes on after the latest time it recorded (virtual time runs ahead of the wall).
        new VirtualClock(
          Math.max(Date.now(), (resume?.last_clock_ms ?? 0) + 1),
          () => stall(new RunStalledError('the run could not finish: every agent is waiting and nothing is scheduled')),
          () => store.busy?.() ?? false,
          store.settled ? () => store.settled!() : undefined,
        )
      : new RealClock(options.speed ?? 1);
  // Agents without a checkpoint start with the runs that begin after this point: now, or the resumed execution's start.
  const head = resume
    ? resume.started.position > 0n
      ? resume.started.position - 1n
      : undefined
    : await store.headPosition();
  const startFrom = head ?? 'start';
  const pid = process.pid;
  const host = osHostname();
  const common = {
    store,
    clock,
    logger,
    startFrom,
    pid,
    hostname: host,
    ...(options.heartbeatSeconds !== undefined ? { heartbeatSeconds: options.heartbeatSeconds } : {}),
  } as const;

  const fp = fastProcessingAgent(
    { name: names.fastProcessing, type: 'Fast_Processing', namespace },
    options.inspect?.onRunTransition ? { onRunTransition: options.inspect.onRunTransition } : {},
  );
  const running: RunningAgent[] = [];
  let pool: ReturnType<typeof startWorkerPool> | undefined;
  if (!options.daqOnly) {
    // Each agent claims its name before the run writes anything: a second `swf run` of the same user started at
    // the same moment refuses here (exit 4) instead of failing half-way with an execution stuck in `imminent`.
    // The fast processing agent first, so that of two racing processes one gets every name and the other none.
    try {
      running.push(startAgent(fp, common));
      await running[0]!.started;
      running.push(startAgent(dataAgent({ name: names.data, type: 'DATA', namespace }), common));
      running.push(startAgent(fastMonAgent({ name: names.fastmon, type: 'fastmon', namespace }), common));
      await Promise.all(running.map((r) => r.started));
    } catch (e: unknown) {
      clock.shutdown();
      await Promise.all(running.map((r) => r.stop()));
      throw e;
    }
    // Resuming, the pool reads the history: it rejoins the runs announced and not finished (no checkpoint to go by).
    const { startFrom: _from, ...poolCommon } = common;
    pool = startWorkerPool({
      ...(resume ? poolCommon : common),
      namespace,
      namePrefix: names.workerPrefix,
    });
  }
  const failures = Promise.race([...running.map((r) => r.done), ...(pool ? [pool.done] : [])]).then(() => {
    throw new Error('an agent stopped before the run finished');
  });

  const progress: Progress = { stf_files: 0, phase: 'starting' };
  // --daq-only: the agents run elsewhere. The run's state is folded from the log by the same rules (the fast
  // processing agent's, its outputs discarded), and their heartbeats tell whether each kind of agent is running.
  const observer = options.daqOnly ? followRun(store, fp, startFrom) : undefined;
  const heartbeatMs = (options.heartbeatSeconds ?? 0) * 1000;
  const roster = new AgentRoster(host, Math.max(STALE_AFTER_MS, 3 * heartbeatMs));
  const watch = options.daqOnly ? watchAgents(store, roster, Math.max(STALE_AFTER_MS, 3 * heartbeatMs)) : undefined;
  const waitSeconds = options.agentWaitSeconds ?? DEFAULT_AGENT_WAIT_SECONDS;
  let gaveUp: GaveUp | undefined;
  let giveUp: () => void = () => {};
  const givenUp = new Promise<void>((resolve) => (giveUp = resolve));
  const missingSince = new Map<string, number>();
  let toldMissing = '';
  const checkAgents = (): void => {
    if (!watch) return;
    const now = Date.now();
    const live = new Set(roster.live(namespace, now).map((a) => a.agent_type));
    const run = progress.run;
    for (const kind of AGENT_KINDS) {
      // Workers start per run, on its run_imminent_worker: none is expected before the run has slices.
      const needed = kind.type !== 'PanDA-worker' || (run !== undefined && run.slices_created > run.slices_completed);
      if (!needed || live.has(kind.type)) missingSince.delete(kind.type);
      else if (!missingSince.has(kind.type)) missingSince.set(kind.type, now);
    }
    const grace = Math.min(MISSING_GRACE_MS, (waitSeconds * 1000) / 2);
    const missing = AGENT_KINDS.filter((k) => now - (missingSince.get(k.type) ?? now) >= grace);
    progress.missing_agents = missing.map((k) => k.type);
    const told = missing.map((k) => k.type).join(',');
    if (told !== toldMissing) {
      toldMissing = told;
      options.onAgentsMissing?.(
        missing.map((k) => k.command),
        waitSeconds,
      );
    }
    const longest = Math.max(0, ...[...missingSince.values()].map((t) => now - t));
    if (!gaveUp && longest >= waitSeconds * 1000) {
      gaveUp = {
        missing: AGENT_KINDS.filter((k) => now - (missingSince.get(k.type) ?? now) >= waitSeconds * 1000).map(
          (k) => k.command,
        ),
        wait_seconds: waitSeconds,
      };
      giveUp();
    }
  };

  const expected = expectedSlices(config);
  if (expected !== undefined) progress.expected_slices = expected;
  const refresh = (): void => {
    if (progress.run_number !== undefined) {
      const run = fp.runState(String(progress.run_number));
      if (run) {
        progress.run = run;
        progress.phase = run.phase;
        progress.finished = fp.isFinished(String(progress.run_number));
      }
    }
  };
  let ticker: NodeJS.Timeout | undefined;
  if (options.onProgress || watch) {
    ticker = setInterval(() => {
      refresh();
      checkAgents();
      options.onProgress?.(progress);
    }, 250);
  }

  let result: DaqResult;
  try {
    const daq = clock.task(() =>
      runDaq({
        store,
        clock,
        logger,
        config,
        user,
        identity: { name: names.daq, type: 'DAQ_Simulator', namespace },
        stopRequested: Promise.race([options.stopRequested ?? new Promise<void>(() => {}), givenUp]),
        ...(options.heartbeatSeconds !== undefined ? { heartbeatSeconds: options.heartbeatSeconds } : {}),
        ...(resume
          ? {
              resume: {
                execution_id: resume.execution_id,
                run_number: resume.run_number,
                start_time: resume.start_time,
              },
            }
          : {}),
        pid,
        hostname: host,
        onStarted: (info) => {
          progress.execution_id = info.execution_id;
          progress.run_number = info.run_number;
        },
        onMessage: (type) => {
          if (type === 'stf_gen') progress.stf_files++;
        },
      }),
    );
    result = await Promise.race([daq, stalled, failures]);
  } finally {
    if (ticker) clearInterval(ticker);
    clock.shutdown();
    await Promise.all(running.map((r) => r.stop()));
    await pool?.stop();
    await watch?.stop();
    await observer?.stop();
  }
  const summary = await summarize(store, result, namespace, head, (performance.now() - wallStart) / 1000);
  if (gaveUp) summary.gave_up = gaveUp;
  // The last progress report counts what the log holds, as the summary does.
  refresh();
  const final = fp.runState(String(result.run_number));
  options.onProgress?.({
    ...progress,
    ...(final ? { run: final } : {}),
    finished: fp.isFinished(String(result.run_number)),
    phase: 'done',
  });
  return summary;
}

/** The slices a run will have, from its configuration, in count mode (duration mode: unknown). */
export function expectedSlices(config: LoadedConfig): number | undefined {
  const fp = config.config.fast_processing;
  let stfs: number;
  try {
    stfs = daqParameters(config.config).stf_count;
  } catch {
    return undefined;
  }
  if (!(stfs > 0)) return undefined;
  const sampled = Number((BigInt(stfs) * BigInt(rateToMillionths(fp.stf_sampling_rate))) / 1_000_000n);
  return sampled * fp.tf_files_per_stf * fp.slices_per_sample;
}

/**
 * Folds a run's events into `agent` as it goes on elsewhere (`--daq-only`): the same decisions with their outputs
 * discarded (`replaying`), so its run state is what the log holds.
 */
function followRun(store: EventStore, agent: FastProcessingAgent, from: 'start' | bigint): { stop(): Promise<void> } {
  const filter = { streamPrefix: [...agent.streamPrefixes] };
  const subscription = store.subscribeToAll({ from, filter });
  let last = typeof from === 'bigint' ? from : -1n;
  const done = (async () => {
    for await (const e of subscription) {
      if (!isImported(e)) decide(agent, e, { now: new Date().toISOString(), replaying: true });
      last = e.position;
    }
  })().catch(() => {});
  return {
    async stop() {
      // Caught up with what the log holds now (a few seconds at most), so the last report counts it all.
      const head = await store.headPosition().catch(() => undefined);
      const behind = async (): Promise<boolean> => {
        for await (const e of store.readAll({ from: last + 1n, filter, maxCount: 1 })) return e.position <= head!;
        return false;
      };
      const deadline = Date.now() + 5000;
      while (head !== undefined && Date.now() < deadline && (await behind().catch(() => false)))
        await new Promise((r) => setTimeout(r, 10));
      await subscription.unsubscribe();
      await done;
    },
  };
}

/** The run's figures, read back from the log (so the summary shows what was recorded, not what was meant). */
export async function summarize(
  store: EventStore,
  daq: DaqResult,
  namespace: string,
  after: bigint | undefined,
  wallSeconds: number,
): Promise<RunSummary> {
  const messages: Record<string, number> = {};
  const agents = new Set<string>();
  const runId = String(daq.run_number);
  // Counted, not collected: a set of slice names would grow with the run (1,050,000 names at 10,000 STFs).
  let created = 0;
  let retried = 0;
  let completed = 0;
  let failed = 0;
  let tfSamples = 0;
  let stfFiles = 0;
  let runFinishedStfs: number | undefined;
  let events = 0;
  let phase = 'unknown';
  let imminentAt: string | undefined;
  let finishedAt: string | undefined;
  const messageTypes = new Set<string>(MESSAGE_TYPES);
  for await (const e of store.readAll(after === undefined ? {} : { from: after + 1n })) {
    const m = e.metadata as { executionId?: unknown; runNumber?: unknown } | null;
    if (m?.executionId !== daq.execution_id && m?.runNumber !== daq.run_number) continue;
    events++;
    const d = e.data as Record<string, unknown>;
    if (messageTypes.has(e.type)) {
      messages[e.type] = (messages[e.type] ?? 0) + 1;
      if (typeof d.sender === 'string' && e.type !== 'agent_heartbeat' && e.type !== 'agent_log') agents.add(d.sender);
    }
    switch (e.type) {
      case 'run_imminent':
        imminentAt ??= String(d.created_at);
        phase = 'imminent';
        break;
      case 'start_run':
      case 'resume_run':
        phase = 'physics';
        break;
      case 'pause_run':
        phase = 'standby';
        break;
      case 'end_run':
        if (!('content' in d)) phase = 'completed';
        break;
      case 'stf_gen':
        stfFiles++;
        break;
      case 'tf_file_registered':
        tfSamples++;
        break;
      case 'slice': {
        // Each slice's first attempt is one `slice` message (its id is derived from its sample's, so never twice).
        const c = d.content as { attempt: number };
        if (c.attempt > 1) retried++;
        else created++;
        break;
      }
      case 'RunFinished':
        if (d.run_id === runId) {
          runFinishedStfs = Number(d.stf_files);
          completed = Number(d.slices_completed);
          failed = Number(d.slices_failed);
          finishedAt = String(d.finished_at);
        }
        break;
    }
  }
  if (runFinishedStfs === undefined) {
    // Not finished (stopped, interrupted, given up): the slices' outcomes as the log holds them, folded by the
    // fast processing agent's own rules (a result counts once, a late one after its lease expired not at all).
    const folded = await foldRun(store, runId, namespace, after);
    if (folded) {
      completed = folded.slices_completed;
      failed = folded.slices_failed;
    }
  }
  const end = finishedAt ?? daq.ended_at;
  const start = imminentAt ?? daq.run_imminent_at ?? daq.started_at;
  return {
    execution_id: daq.execution_id,
    run_number: daq.run_number,
    namespace,
    status: daq.status,
    phase,
    // The STFs the run took (a rejected stf_gen is a message, not an STF); the stored count if it never finished.
    stf_files: runFinishedStfs ?? (daq.stf_files > 0 ? daq.stf_files : stfFiles),
    tf_samples: tfSamples,
    slices: { created, completed, failed, retried },
    messages,
    agents: [...agents].sort(),
    duration_s: Math.round((Date.parse(end) - Date.parse(start)) / 10) / 100,
    wall_s: Math.round(wallSeconds * 1000) / 1000,
    store: store.url,
    events,
  };
}

/** A run's RunState folded from the log (the fast processing agent's rules, nothing written). */
export async function foldRun(
  store: EventStore,
  runId: string,
  namespace: string,
  after: bigint | undefined,
): Promise<RunContext | undefined> {
  const fold = fastProcessingAgent({ name: 'swf-run-summary', type: 'Fast_Processing', namespace });
  const filter = { streamPrefix: [...fold.streamPrefixes] };
  const now = new Date().toISOString();
  for await (const e of store.readAll({ ...(after === undefined ? {} : { from: after + 1n }), filter })) {
    if (!isImported(e)) decide(fold, e, { now, replaying: true });
  }
  return fold.runState(runId);
}
