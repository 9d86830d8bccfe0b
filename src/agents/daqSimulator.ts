/**
 * The DAQ simulator (DESIGN.md semantics 2, testbed-facts §2.3): creates the workflow execution and the run
 * number, walks the DAQ machine with the `[daq_state_machine]` delays, announces run_imminent, start_run,
 * stf_gen × n, pause_run/resume_run between physics periods and end_run, then waits until the run is finished
 * (the fast processing agent's RunFinished) and completes the execution. A stop request (`swf stop`, Ctrl-C)
 * ends the run early and cleanly: end_run is sent and the execution is marked terminated.
 */
import type { Logger } from 'pino';
import { daqParameters, type LoadedConfig } from '../config/index.js';
import { type EventStore } from '../eventStore/eventStore.js';
import { lastRevision } from '../eventStore/streamState.js';
import { daqEventOf, daqStamp, fastDaq, machineDefinitions, machineHash, refusalOf } from '../machines/index.js';
import {
  deriveId,
  domainEvent,
  EXECUTION_IDS_STREAM,
  type DaqLifecycleMessage,
  type EnvelopedEvent,
  messageEvent,
  RUN_NUMBERS_STREAM,
  splitStfCount,
  stfFilename,
  streams,
} from '../messages/index.js';
import type { Clock } from './clock.js';
import { type AgentIdentity, heartbeat, logLine, type Output, StreamWriter, wallSleep } from './runtime.js';

import { FIRST_RUN_NUMBER } from '../messages/streams.js';
import { describeError, isExpectedVersionConflict, isNotFoundError } from '../errors.js';

export { FIRST_RUN_NUMBER };

export interface DaqOptions {
  store: EventStore;
  clock: Clock;
  logger: Logger;
  config: LoadedConfig;
  identity: AgentIdentity;
  /** The OS user (execution ids are `<workflow>-<user>-NNNN`). */
  user: string;
  /** Resolves when someone asks the run to stop (Ctrl-C); `swf stop` is read from the log. */
  stopRequested?: Promise<void>;
  /** Told of each message the DAQ sends (progress display). */
  onMessage?: (type: string) => void;
  /** Told the execution and run as soon as they exist. */
  onStarted?: (info: { execution_id: string; run_number: number }) => void;
  pid?: number;
  hostname?: string;
  /**
   * Heartbeat period in wall-clock seconds while the DAQ runs (`SWF_HEARTBEAT_SECONDS`, as the other agents');
   * undefined: only when its execution starts and ends.
   */
  heartbeatSeconds?: number;
  /**
   * Carry on this execution (`swf run --resume`) instead of starting one: the DAQ walks its program again, sends
   * only the messages the log does not hold yet (their ids are derived) and does not wait while catching up.
   */
  resume?: { execution_id: string; run_number: number; start_time: string };
}

/** What a lifecycle message adds to the fields every DAQ message carries (envelope, clock, E0-E1 stamp). */
type DaqBody =
  | { msg_type: 'run_imminent' | 'start_run' | 'resume_run' }
  | { msg_type: 'pause_run'; reason: string }
  | { msg_type: 'stf_gen'; filename: string; sequence: number }
  | { msg_type: 'end_run'; total_stf_files: number };

export interface DaqResult {
  execution_id: string;
  run_number: number;
  status: 'completed' | 'terminated' | 'failed';
  started_at: string;
  run_imminent_at?: string;
  ended_at: string;
  stf_files: number;
}

/** Appends one event to a counter stream with an exact expected revision, retrying lost races. */
async function allocate(
  store: EventStore,
  stream: string,
  make: (revision: number) => EnvelopedEvent,
): Promise<number> {
  for (;;) {
    const last = await lastRevision(store, stream);
    const head = last === 'no_stream' ? -1 : Number(last);
    const revision = head + 1;
    try {
      await store.appendToStream(stream, [make(revision)], { expectedRevision: head < 0 ? 'no_stream' : BigInt(head) });
      return revision;
    } catch (e: unknown) {
      if (!isExpectedVersionConflict(e)) throw e;
    }
  }
}

export async function runDaq(options: DaqOptions): Promise<DaqResult> {
  const { store, clock, identity, config, logger } = options;
  const namespace = identity.namespace;
  const params = daqParameters(config.config);
  const workflowName = config.config.workflow.name;
  const resume = options.resume;
  const startedAt = resume?.start_time ?? clock.iso();
  const startMs = clock.now();
  const pid = options.pid ?? 0;
  const hostname = options.hostname ?? 'localhost';

  // Identity: the execution id and the run number, from per-store counters.
  let executionId = resume?.execution_id ?? '';
  if (!resume)
    await allocate(store, EXECUTION_IDS_STREAM, (rev) => {
      executionId = `${workflowName}-${options.user}-${String(rev + 1).padStart(4, '0')}`;
      return domainEvent(
        'ExecutionIdAllocated',
        { execution_id: executionId, sequence: rev + 1 },
        { id: deriveId(EXECUTION_IDS_STREAM, rev), namespace },
      );
    });
  const runNumber = resume
    ? resume.run_number
    : FIRST_RUN_NUMBER +
      (await allocate(store, RUN_NUMBERS_STREAM, (rev) =>
        domainEvent(
          'RunNumberAllocated',
          { run_number: FIRST_RUN_NUMBER + rev, execution_id: executionId },
          { id: deriveId(RUN_NUMBERS_STREAM, rev), namespace },
        ),
      ));
  const runId = String(runNumber);
  const root = { id: deriveId(executionId, 'execution') };
  options.onStarted?.({ execution_id: executionId, run_number: runNumber });

  const streamWriter = new StreamWriter(store);
  // The DAQ's messages and its periodic heartbeats commit one at a time (they share the writer's revisions).
  let queue: Promise<void> = Promise.resolve();
  const writer = {
    commit(outputs: readonly Output[]): Promise<void> {
      const next = queue.then(() => streamWriter.commit(outputs));
      queue = next.catch(() => {});
      return next;
    },
    forget: (stream: string): void => streamWriter.forget(stream),
  };
  let beats = 0;
  /** A PROCESSING heartbeat of this process (the periodic ones, a resumed DAQ's first). */
  const beat = (purpose: string): Promise<void> =>
    writer.commit([
      heartbeat(identity, 'PROCESSING', {
        // pid and time: a resumed execution's DAQ (another process) beats under ids of its own
        id: deriveId(root.id, 'heartbeat', purpose, pid, Date.now(), beats++),
        now: clock.iso(),
        pid,
        hostname,
        executionId,
        runId,
      }),
    ]);
  const definitions = machineDefinitions();
  // Resuming: the messages already sent, which the walk below passes over.
  const sent = new Set<string>();
  if (resume) {
    try {
      for await (const e of store.readStream(streams.run(runId))) sent.add(e.id);
    } catch (e: unknown) {
      if (!isNotFoundError(e)) throw e;
    }
  }
  let catchingUp = sent.size > 0;
  if (!resume)
    await writer.commit([
      {
        stream: streams.execution(executionId),
        event: domainEvent(
          'WorkflowExecutionStarted',
          {
            execution_id: executionId,
            workflow_name: workflowName,
            namespace,
            executed_by: options.user,
            parameter_values: config.parameterValues,
            machine_hash: machineHash(definitions),
            machine_definitions: definitions,
            start_time: startedAt,
            run_number: runNumber,
          },
          { id: root.id, namespace, executionId, runNumber },
        ),
      },
      heartbeat(identity, 'PROCESSING', {
        id: deriveId(root.id, 'heartbeat', 'processing'),
        now: startedAt,
        pid,
        hostname,
        executionId,
        runId,
      }),
    ]);
  // A resumed DAQ says at once that this process now drives the execution (`swf run --resume` refuses while it lives).
  else await beat('resumed');

  // Stop requests: Ctrl-C (a promise) or StopRequested in the execution stream (`swf stop`).
  let stopped = false;
  let wakeStop: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => (wakeStop = resolve));
  const requestStop = (): void => {
    if (stopped) return;
    stopped = true;
    wakeStop();
  };
  void options.stopRequested?.then(requestStop);
  const executionWatch = store.subscribeToStream(streams.execution(executionId));
  void (async () => {
    for await (const e of executionWatch) if (e.type === 'StopRequested') requestStop();
  })().catch(() => {});

  // The DAQ machine checks every message before it is sent: only legal state/substate pairs occur.
  let daq = fastDaq.initial();
  let seq = 0;
  let stfs = 0;
  let runImminentAt: string | undefined;
  const emit = async (body: DaqBody, purpose: string | number = ''): Promise<void> => {
    const msgType = body.msg_type;
    const event = daqEventOf({ msg_type: msgType, run_id: runId });
    if (event) {
      const next = fastDaq.next(daq, event);
      const refusal = refusalOf(daq, next);
      if (refusal) throw new Error(`DAQ machine refused ${msgType}: ${refusal.reason}`);
      daq = next;
    }
    const id = deriveId(root.id, msgType, purpose);
    if (sent.has(id)) {
      options.onMessage?.(msgType);
      return;
    }
    catchingUp = false;
    const now = clock.iso();
    const head = {
      namespace,
      sender: identity.name,
      execution_id: executionId,
      run_id: runId,
      created_at: now,
      timestamp: now,
      simulation_tick: (clock.now() - startMs) / 1000,
    };
    // end_run leaves the run: it carries no state/substate stamp.
    const message: DaqLifecycleMessage =
      body.msg_type === 'end_run' ? { ...head, ...body } : { ...head, ...daqStamp(daq.value), ...body };
    await writer.commit([
      {
        stream: streams.run(runId),
        event: messageEvent(message, { id, cause: root }),
      },
    ]);
    options.onMessage?.(msgType);
    // Every broadcast takes 0.1 s in the testbed's SimPy process.
    await clock.sleep(0.1);
  };
  /** A DAQ transition without a message (beam ready, beam off). */
  const advance = (event: Parameters<typeof fastDaq.next>[1]): void => {
    daq = fastDaq.next(daq, event);
  };
  /** Sleeps `seconds`, or less if a stop comes first. Returns whether the run should go on. */
  const wait = async (seconds: number): Promise<boolean> => {
    if (stopped) return false;
    if (catchingUp) return true;
    await clock.sleepUntil(clock.now() + clock.durationMs(seconds), stopSignal);
    return !stopped;
  };

  // Heartbeats on a wall-clock period (as every agent's: liveness is judged by the wall clock, and a virtual clock's
  // seconds pass in microseconds) until the execution ends; the wall sleep is idle time for a virtual clock, and
  // `finish` ends it before the EXITED heartbeat, which stays the last.
  let endBeats: () => void = () => {};
  const beatsEnd = new Promise<void>((r) => (endBeats = r));
  let beatsDone = false;
  const heartbeatSeconds = options.heartbeatSeconds;
  const beating =
    heartbeatSeconds === undefined
      ? Promise.resolve()
      : clock.task(async () => {
          for (;;) {
            await clock.idle(wallSleep(heartbeatSeconds * 1000, beatsEnd));
            if (beatsDone || clock.isShutDown) return;
            // A heartbeat that cannot be stored (a store gone for a moment) is not worth failing the run for.
            await beat('period').catch((e: unknown) =>
              logger.warn({ agent: identity.name, err: describeError(e) }, 'DAQ heartbeat not stored'),
            );
          }
        });
  const stopBeats = async (): Promise<void> => {
    beatsDone = true;
    endBeats();
    await beating;
  };

  let status: DaqResult['status'] = 'completed';
  let runStarted = false;
  try {
    // no_beam/not_ready → beam/not_ready (run_imminent) → beam/ready → run/physics ↔ run/standby → beam/not_ready → no_beam
    if (await wait(params.no_beam_not_ready_delay)) {
      runImminentAt = clock.iso();
      await emit({ msg_type: 'run_imminent' });
      runStarted = true;
      await wait(params.broadcast_delay);
      await wait(params.beam_not_ready_delay);
      if (!stopped) {
        advance({ type: 'BEAM_READY' });
        await wait(params.beam_ready_delay);
      }
      const periods = params.physics_period_count;
      const perPeriod = params.stf_count > 0 ? splitStfCount(params.stf_count, Math.max(1, periods)) : undefined;
      for (let period = 0; !stopped && (periods === 0 || period < periods); period++) {
        await emit({ msg_type: period === 0 ? 'start_run' : 'resume_run' }, period);
        await wait(params.broadcast_delay);
        const periodStart = clock.now();
        const count = perPeriod ? (perPeriod[period] ?? 0) : Number.POSITIVE_INFINITY;
        for (let k = 0; k < count && !stopped; k++) {
          if (!perPeriod && clock.now() - periodStart >= clock.durationMs(params.physics_period_duration)) break;
          seq++;
          await emit({ msg_type: 'stf_gen', filename: stfFilename(runId, seq), sequence: seq }, seq);
          stfs++;
          if (!(await wait(params.stf_generation_time))) break;
          const last = perPeriod
            ? k === count - 1
            : clock.now() - periodStart >= clock.durationMs(params.physics_period_duration);
          if (!last && !(await wait(params.stf_interval))) break;
        }
        if (!stopped && (periods === 0 || period + 1 < periods)) {
          await emit({ msg_type: 'pause_run', reason: 'Brief standby period' }, period);
          await wait(params.broadcast_delay);
          await wait(params.standby_duration);
        }
      }
    }
    if (runStarted) {
      await emit({ msg_type: 'end_run', total_stf_files: stfs });
      if (!stopped) await wait(params.broadcast_delay);
      if (!stopped) await wait(params.beam_not_ready_end_delay);
      if (!stopped) advance({ type: 'BEAM_OFF' });
    }
    if (stopped) status = 'terminated';
    else {
      // The run is finished when the fast processing agent says every slice is final.
      const finished = await waitForRunFinished(store, clock, runId, stopSignal);
      if (!finished) status = 'terminated';
    }
  } catch (e: unknown) {
    status = 'failed';
    logger.error({ err: e instanceof Error ? e.message : String(e) }, 'DAQ simulator failed');
    await finish(e instanceof Error ? e.message : String(e)).catch(() => {});
    await executionWatch.unsubscribe();
    throw e;
  }
  const endedAt = await finish(status === 'terminated' ? 'stop requested' : undefined);
  await executionWatch.unsubscribe();
  const result: DaqResult = {
    execution_id: executionId,
    run_number: runNumber,
    status,
    started_at: startedAt,
    ended_at: endedAt,
    stf_files: stfs,
  };
  if (runImminentAt !== undefined) result.run_imminent_at = runImminentAt;
  return result;

  async function finish(reason: string | undefined): Promise<string> {
    await stopBeats();
    const now = clock.iso();
    const outputs: Output[] = [
      {
        stream: streams.execution(executionId),
        event: domainEvent(
          'WorkflowExecutionFinished',
          { execution_id: executionId, status, end_time: now, ...(reason !== undefined ? { reason } : {}) },
          { id: deriveId(root.id, 'finished'), namespace, cause: root, executionId, runNumber },
        ),
      },
      logLine(identity, status === 'completed' ? 'info' : 'warning', `Workflow ${status}: ${executionId}`, {
        cause: root,
        purpose: 'finished',
        now,
        executionId,
        runId,
      }),
      // The DAQ runs one execution and ends with it: its last heartbeat says so (the monitor shows it exited).
      heartbeat(identity, 'EXITED', {
        id: deriveId(root.id, 'heartbeat', 'ready'),
        now,
        pid,
        hostname,
        executionId,
        runId,
      }),
    ];
    writer.forget(streams.execution(executionId));
    await writer.commit(outputs);
    return now;
  }
}

/** Waits for RunFinished on the run's fast processing stream, or a stop. */
async function waitForRunFinished(
  store: EventStore,
  clock: Clock,
  runId: string,
  stop: Promise<void>,
): Promise<boolean> {
  const sub = store.subscribeToStream(streams.fastproc(runId));
  const iterator = sub[Symbol.asyncIterator]();
  let stopped = false;
  void stop.then(() => {
    stopped = true;
    void sub.unsubscribe();
  });
  try {
    for (;;) {
      const next = await clock.idle(iterator.next());
      if (next.done || stopped) return false;
      if (next.value.type === 'RunFinished') return true;
    }
  } finally {
    await sub.unsubscribe();
  }
}
