/**
 * The PanDA worker pool (DESIGN.md semantics 6). On `run_imminent_worker`, `target_worker_count` workers share
 * the run's slice queue (`slices-<run>`) as competing consumers (the store's group subscription). A worker takes
 * one slice at a time: it records `SliceProcessingStarted` (with its lease deadline), runs the payload, sends a
 * `slice_result` naming the slice, then acks the delivery. Retries are the fast processing agent's decision;
 * the store's redelivery only covers a worker that died holding a slice.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { EventStore, GroupSubscription, StoredEvent, Subscription } from '../eventStore/eventStore.js';
import {
  deriveId,
  domainEvent,
  parseEvent,
  parseMessage,
  payloadFails,
  type SliceContent,
  STREAM_PREFIXES,
  streams,
} from '../messages/index.js';
import type { Clock } from './clock.js';
import { common, ExecutionParameters, send } from './common.js';
import { type AgentIdentity, heartbeat, isImported, type Output, StreamWriter, wallSleep } from './runtime.js';

/** The work a worker does with a slice. The placeholder sleeps; EICrecon would run here. */
export interface Payload {
  process(slice: SliceContent, env: { clock: Clock; seed: number; failureRate: number }): Promise<PayloadResult>;
}

export interface PayloadResult {
  ok: boolean;
  error?: string;
  output?: Record<string, unknown>;
}

/** Takes `slice_processing_time` and fails with probability `worker_failure_rate`, keyed by (seed, slice, attempt). */
export const placeholderPayload: Payload = {
  async process(slice, { clock, seed, failureRate }) {
    await clock.sleep(slice.slice_processing_time);
    if (payloadFails(seed, slice.tf_filename, slice.attempt, failureRate)) {
      return { ok: false, error: `placeholder payload failed (worker_failure_rate ${failureRate})` };
    }
    const stem = slice.tf_filename.replace(/\.tf$/, '');
    return {
      ok: true,
      output: {
        output_filename: `${stem}_run_${slice.run_id}_slice_${slice.slice_id}_s${slice.start}_e${slice.end}.edm4eic.root`,
      },
    };
  },
};

export const WORKER_GROUP = 'panda-workers';

export interface WorkerPoolOptions {
  store: EventStore;
  clock: Clock;
  logger: Logger;
  namespace: string;
  /** Worker names: `<prefix>-<NN>`. */
  namePrefix: string;
  /** Workers to run; default: the run's `target_worker_count`. */
  workers?: number;
  payload?: Payload;
  /** Where the pool starts reading when it has no checkpoint. */
  startFrom?: 'start' | bigint;
  pid?: number;
  hostname?: string;
  /** Ack timeout of the slice queue in wall milliseconds (a worker that died). Default: 3 × the lease, at least 5 s. */
  ackTimeoutMs?: number;
  /** Each worker's heartbeat period in wall-clock seconds; undefined: only when it starts and exits. */
  heartbeatSeconds?: number;
}

interface RunWorkers {
  stop: () => Promise<void>;
  done: Promise<void>;
}

/** Runs the pool until `stop()`; it follows the runs announced in its namespace. */
export function startWorkerPool(options: WorkerPoolOptions): { done: Promise<void>; stop(): Promise<void> } {
  const { store, clock, logger, namespace } = options;
  const payload = options.payload ?? placeholderPayload;
  const parameters = new ExecutionParameters();
  const runs = new Map<string, RunWorkers>();
  const finishedExecutions = new Set<string>();
  const pid = options.pid ?? 0;
  const hostname = options.hostname ?? 'localhost';
  let stopping = false;
  let failPool: (e: unknown) => void = () => {};
  const poolFailed = new Promise<never>((_, reject) => (failPool = reject));
  poolFailed.catch(() => {});

  function startRun(runId: string, executionId: string): void {
    if (runs.has(runId)) return;
    const config = parameters.get(executionId);
    if (!config) {
      logger.warn({ run: runId }, 'run_imminent_worker for an execution whose configuration was not seen');
      return;
    }
    const fp = config.fast_processing;
    const count = options.workers ?? fp.target_worker_count;
    const leaseMs = clock.durationMs(fp.slice_processing_time * fp.slice_lease_factor);
    const ackTimeoutMs = options.ackTimeoutMs ?? Math.max(5000, Math.ceil(3 * leaseMs));
    const subs: GroupSubscription[] = [];
    const loops: Promise<void>[] = [];
    for (let i = 1; i <= count; i++) {
      const identity: AgentIdentity = {
        name: `${options.namePrefix}-${String(i).padStart(2, '0')}`,
        type: 'PanDA-worker',
        namespace,
      };
      const sub = store.subscribeToGroup(streams.slices(runId), WORKER_GROUP, {
        ackTimeoutMs,
        maxRetryCount: 10,
        bufferSize: 1,
        // Named after the worker: a resumed run's worker takes back at once the slice its dead namesake held (same
        // attempt, same derived ids), so a kill costs no attempt and the run ends as an uninterrupted one would.
        member: identity.name,
      });
      subs.push(sub);
      loops.push(clock.task(() => workerLoop(identity, sub, fp, leaseMs)));
    }
    logger.info({ run: runId, workers: count }, 'workers started');
    const workersDone = Promise.all(loops).then(() => {});
    // A worker that fails (the store became unwritable) fails the pool, which its owner awaits.
    workersDone.catch((e: unknown) => failPool(e));
    runs.set(runId, {
      done: workersDone,
      stop: async () => {
        await Promise.all(subs.map((s) => s.unsubscribe()));
        await Promise.allSettled(loops);
      },
    });
  }

  async function workerLoop(
    identity: AgentIdentity,
    sub: GroupSubscription,
    fp: { slice_processing_time: number; seed: number; worker_failure_rate: number },
    leaseMs: number,
  ): Promise<void> {
    const writer = new StreamWriter(store);
    let beats = 0;
    const beat = (state: 'READY' | 'PROCESSING' | 'EXITED'): Output =>
      heartbeat(identity, state, {
        id: deriveId(identity.name, 'heartbeat', pid, clock.now(), beats++),
        now: clock.iso(),
        pid,
        hostname,
      });
    await writer.commit([beat('READY')]);
    // Heartbeats on a wall-clock period while the worker runs: PROCESSING while it holds a slice.
    let busy = false;
    let workerDone = false;
    let endBeats: () => void = () => {};
    const beatsEnd = new Promise<void>((r) => (endBeats = r));
    const beating =
      options.heartbeatSeconds === undefined
        ? Promise.resolve()
        : clock.task(async () => {
            for (;;) {
              await clock.idle(wallSleep(options.heartbeatSeconds! * 1000, beatsEnd));
              if (stopping || workerDone) return;
              await writer.commit([beat(busy ? 'PROCESSING' : 'READY')]).catch(() => {});
            }
          });
    const iterator = sub[Symbol.asyncIterator]();
    /** The last slice's ack (its error, if it failed): the claim of the next one goes with it (one commit, not two). */
    let acked: Promise<Error | undefined> | undefined;
    try {
      for (;;) {
        const next = await clock.idle(iterator.next());
        const ackFailed = await acked;
        acked = undefined;
        if (ackFailed !== undefined) throw ackFailed;
        if (next.done) break;
        const delivery = next.value;
        busy = true;
        let content: SliceContent;
        try {
          const m = parseMessage(delivery.data);
          if (m.msg_type !== 'slice') throw new Error(`a ${m.msg_type} message in the slice queue`);
          content = m.content;
        } catch (e: unknown) {
          await writer.commit([rejected(identity, delivery, describeError(e), clock.iso())]);
          await sub.nack(delivery, 'park', describeError(e));
          busy = false;
          continue;
        }
        const startedAt = clock.now();
        await writer.commit([
          {
            stream: streams.results(content.run_id),
            event: domainEvent(
              'SliceProcessingStarted',
              {
                run_id: content.run_id,
                execution_id: content.execution_id,
                namespace,
                slice_id: content.slice_id,
                tf_filename: content.tf_filename,
                fastmon_file: content.fastmon_file,
                attempt: content.attempt,
                worker: identity.name,
                started_at: new Date(startedAt).toISOString(),
                lease_deadline: new Date(startedAt + leaseMs).toISOString(),
              },
              { id: deriveId(delivery, 'started', identity.name, delivery.retryCount), namespace, cause: delivery },
            ),
          },
        ]);
        const result = await payload.process(content, { clock, seed: fp.seed, failureRate: fp.worker_failure_rate });
        const now = clock.iso();
        await writer.commit([
          send(
            {
              msg_type: 'slice_result',
              ...common(identity, { execution_id: content.execution_id, run_id: content.run_id }, now),
              content: {
                slice_id: content.slice_id,
                tf_filename: content.tf_filename,
                attempt: content.attempt,
                state: result.ok ? 'done' : 'failed',
                requested_at: null,
                processing_start_at: new Date(startedAt).toISOString(),
                processed_at: now,
                hostname,
                result: {
                  state: result.ok,
                  result: result.ok ? { ...content, processed: true, ...result.output } : null,
                  error: result.error ?? null,
                },
              },
            },
            delivery,
            'result',
            identity.name,
            delivery.retryCount,
          ),
        ]);
        busy = false;
        acked = sub.ack(delivery).then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e : new Error(`ack failed: ${String(e)}`)),
        );
      }
    } finally {
      workerDone = true;
      endBeats();
      await beating;
      await acked;
      await writer.commit([beat('EXITED')]).catch(() => {});
    }
  }

  function rejected(identity: AgentIdentity, event: StoredEvent, reason: string, now: string): Output {
    void now;
    return {
      stream: streams.agent(identity.name),
      event: domainEvent(
        'MessageRejected',
        {
          agent: identity.name,
          reason,
          original_event_id: event.id,
          original_type: event.type,
          original_stream: event.streamName,
          original_position: Number(event.position),
        },
        { id: deriveId(event, 'rejected', identity.name), namespace, cause: event },
      ),
    };
  }

  // The pool follows the workers' topic: run_imminent_worker starts a run's workers; RunFinished (or the end of
  // the execution) stops them. On start it reads the history first, so a restarted pool rejoins the runs still
  // going and starts nothing for the finished ones.
  const filter = { streamPrefix: [STREAM_PREFIXES.execution, STREAM_PREFIXES.fastproc] };
  const runOfExecution = new Map<string, string>();
  const announced = new Map<string, string>();
  let live = false;
  let subscription: Subscription | undefined;

  function observe(event: StoredEvent): void {
    if (isImported(event)) return;
    const ns = (event.metadata as { namespace?: unknown } | null)?.namespace;
    if (ns !== undefined && ns !== namespace) return;
    if (
      event.type !== 'WorkflowExecutionStarted' &&
      event.type !== 'RunFinished' &&
      event.type !== 'WorkflowExecutionFinished' &&
      event.type !== 'run_imminent_worker'
    )
      return;
    let parsed;
    try {
      parsed = parseEvent(event);
    } catch {
      return; // the fast processing agent records malformed events in its streams
    }
    if (parsed.kind === 'domain') {
      if (parsed.type === 'WorkflowExecutionStarted') parameters.record(event);
      else if (parsed.type === 'RunFinished' || parsed.type === 'WorkflowExecutionFinished') {
        const runId = parsed.type === 'RunFinished' ? parsed.data.run_id : runOfExecution.get(parsed.data.execution_id);
        if (parsed.type === 'WorkflowExecutionFinished') finishedExecutions.add(parsed.data.execution_id);
        if (runId === undefined) return;
        announced.delete(runId);
        const r = runs.get(runId);
        if (r) void r.stop();
      }
    } else if (parsed.message.msg_type === 'run_imminent_worker') {
      const m = parsed.message;
      runOfExecution.set(m.execution_id, m.run_id);
      if (finishedExecutions.has(m.execution_id)) return;
      announced.set(m.run_id, m.execution_id);
      if (live) startRun(m.run_id, m.execution_id);
    }
  }

  const control = async (): Promise<void> => {
    let from: 'start' | bigint = options.startFrom ?? 'start';
    if (options.startFrom === undefined) {
      const head = await store.headPosition();
      if (head !== undefined) {
        for await (const e of store.readAll({ filter })) {
          if (e.position > head) break;
          observe(e);
        }
        from = head;
      }
    }
    live = true;
    for (const [runId, executionId] of announced) startRun(runId, executionId);
    if (stopping) return;
    subscription = store.subscribeToAll({ from, filter });
    const iterator = subscription[Symbol.asyncIterator]();
    for (;;) {
      const next = await clock.idle(iterator.next());
      if (next.done || stopping) break;
      observe(next.value);
    }
  };

  const done = Promise.race([
    clock.task(control).then(async () => {
      await Promise.all([...runs.values()].map((r) => r.stop()));
    }),
    poolFailed,
  ]);
  return {
    done,
    async stop() {
      stopping = true;
      await subscription?.unsubscribe();
      await Promise.all([...runs.values()].map((r) => r.stop()));
      await done.catch(() => {});
    },
  };
}
