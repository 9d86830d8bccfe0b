/**
 * The agent runtime. An agent is a catch-up subscription to the log (the streams it reads, its namespace), a
 * pure decision per event (`handle`), and an append of the resulting events committed with its checkpoint in one
 * transaction where the store allows it (SQLite: yes).
 *
 * - Output ids are derived from the input event id (see `deriveId`), so a handler re-run after a crash appends
 *   nothing twice; appends carry exact expected revisions (the agent is the only writer of its streams).
 * - A stateful agent (the fast processing agent) rebuilds its state on start by folding its history up to its
 *   checkpoint without appending anything, then goes on live.
 * - A malformed event, or one of an unknown type, in a stream the agent reads is not dropped: the agent records a
 *   `MessageRejected` naming the problem and the original event, and goes on.
 */
import type { Logger } from 'pino';
import { describeError, IllegalStateError, isExpectedVersionConflict, isNotFoundError, isSwfError } from '../errors.js';
import { type EventStore, type StoredEvent, type StreamAppend, type Subscription } from '../eventStore/eventStore.js';
import {
  deriveId,
  domainEvent,
  type EnvelopedEvent,
  hasManyWriters,
  isDomainEventType,
  isMessageType,
  messageEvent,
  type ParsedEvent,
  parseEvent,
  streams,
  type Message,
} from '../messages/index.js';
import { lastRevision } from '../eventStore/streamState.js';
import { fastParse } from '../messages/fastParse.js';
import type { Clock } from './clock.js';
import { processState } from './health.js';

export interface Output {
  stream: string;
  event: EnvelopedEvent;
}

export interface HandleContext {
  /** The clock's time, ISO UTC. */
  now: string;
  /** True while rebuilding state from history: outputs are discarded (they are already stored). */
  replaying: boolean;
}

export interface AgentIdentity {
  /** Instance name, e.g. `fast_processing-agent-swf`. Also its checkpoint name (with the namespace). */
  name: string;
  /** The testbed's agent_type, e.g. `Fast_Processing`. */
  type: string;
  namespace: string;
}

export interface Agent extends AgentIdentity {
  /** Stream prefixes the agent reads (its "destinations"). */
  readonly streamPrefixes: readonly string[];
  /** Event types it acts on; other known types in its streams are passed over, unknown ones rejected. */
  readonly handles: ReadonlySet<string>;
  /** Whether it must fold its history on start (it keeps state across events). */
  readonly stateful: boolean;
  handle(event: StoredEvent, parsed: ParsedEvent, ctx: HandleContext): Output[];
  /** For agents with deadlines: the earliest one (clock ms), if any. */
  nextDeadline?(): number | undefined;
  /** Outputs for every deadline at or before `now` (clock ms). */
  onDeadline?(nowMs: number, ctx: HandleContext): Output[];
  /** Called after each committed event, e.g. so the composition root can watch for a finished run. */
  afterEvent?(event: StoredEvent): void;
}

export interface RuntimeOptions {
  store: EventStore;
  clock: Clock;
  logger: Logger;
  /** Where a fresh agent (no checkpoint) starts: 'start', or a position (the log's head when the run began). */
  startFrom?: 'start' | bigint;
  /**
   * Heartbeat period in wall-clock seconds (whatever the clock: liveness is judged against the wall clock, and a
   * virtual clock's seconds pass in microseconds); undefined: only on start and exit.
   */
  heartbeatSeconds?: number;
  /** Process id and host name for heartbeats. */
  pid?: number;
  hostname?: string;
}

/**
 * Appends with exact expected revisions, tracking each stream's revision (the agent is its only writer); to a
 * stream with many writers (`hasManyWriters`: a run's results) with `any`, the derived ids keeping it idempotent
 * where the store guarantees that (`capabilities.idempotentWithAnyRevision`; on EventStoreDB a repeat after a server
 * restart can store a copy, which the slice machine then refuses: docs/eventstoredb.md).
 */
export class StreamWriter {
  private readonly revisions = new Map<string, bigint | 'no_stream'>();

  constructor(private readonly store: EventStore) {}

  async revisionOf(stream: string): Promise<bigint | 'no_stream'> {
    const known = this.revisions.get(stream);
    if (known !== undefined) return known;
    const rev = await lastRevision(this.store, stream);
    this.revisions.set(stream, rev);
    return rev;
  }

  forget(stream: string): void {
    this.revisions.delete(stream);
  }

  /** Groups outputs by stream, in order, each with its exact expected revision. */
  async appendsFor(outputs: readonly Output[]): Promise<StreamAppend[]> {
    const byStream = new Map<string, EnvelopedEvent[]>();
    for (const o of outputs) {
      const list = byStream.get(o.stream);
      if (list) list.push(o.event);
      else byStream.set(o.stream, [o.event]);
    }
    const appends: StreamAppend[] = [];
    for (const [stream, events] of byStream) {
      appends.push({
        stream,
        events,
        expectedRevision: hasManyWriters(stream) ? 'any' : await this.revisionOf(stream),
      });
    }
    return appends;
  }

  /**
   * Commits outputs (and a checkpoint). On a conflict, another writer moved a stream (a restarted twin, or a
   * repeat after a crash on a store without atomic commits): re-read the revisions and, if these very events are
   * already stored, count the commit as done.
   */
  async commit(outputs: readonly Output[], checkpoint?: { name: string; position: bigint }): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const appends = await this.appendsFor(outputs);
      try {
        const result = await this.store.commit(appends, checkpoint);
        // A stream with many writers is appended to with `any`: its revision is not ours to track.
        result.appends.forEach((r, i) => {
          if (appends[i]!.expectedRevision !== 'any') this.revisions.set(appends[i]!.stream, r.nextRevision);
        });
        return;
      } catch (e: unknown) {
        if (!isExpectedVersionConflict(e) || attempt >= 3) throw e;
        for (const a of appends) this.forget(a.stream);
        if (await this.alreadyStored(appends)) {
          if (checkpoint) await this.store.checkpoints.set(checkpoint.name, checkpoint.position);
          return;
        }
      }
    }
  }

  private async alreadyStored(appends: StreamAppend[]): Promise<boolean> {
    for (const a of appends) {
      const ids = new Set(a.events.map((e) => e.id));
      let found = 0;
      try {
        for await (const e of this.store.readStream(a.stream, { direction: 'backwards', maxCount: 1000 })) {
          if (ids.has(e.id)) found++;
        }
      } catch {
        return false;
      }
      if (found !== ids.size) return false;
    }
    return true;
  }
}

/** The message of one `msg_type`: outgoing messages are typed when they are built. */
export type MessageOf<T extends Message['msg_type']> = Extract<Message, { msg_type: T }>;

/** A heartbeat message (the testbed's SystemAgent heartbeat, as an event). */
export function heartbeat(
  agent: AgentIdentity,
  operational_state: 'STARTING' | 'READY' | 'PROCESSING' | 'EXITED',
  opts: { id: string; now: string; pid: number; hostname: string; executionId?: string | null; runId?: string | null },
): Output {
  const message: MessageOf<'agent_heartbeat'> = {
    msg_type: 'agent_heartbeat',
    instance_name: agent.name,
    agent_type: agent.type,
    status: operational_state === 'EXITED' ? 'EXITED' : 'OK',
    operational_state,
    namespace: agent.namespace,
    pid: opts.pid,
    hostname: opts.hostname,
    sender: agent.name,
    created_at: opts.now,
    execution_id: opts.executionId ?? null,
    run_id: opts.runId ?? null,
  };
  return { stream: streams.agent(agent.name), event: messageEvent(message, { id: opts.id }) };
}

const LEVELS = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

/** A log line as an event (the testbed's AppLog), caused by `cause`. */
export function logLine(
  agent: AgentIdentity,
  level: LogLevel,
  message: string,
  opts: { cause: StoredEvent | { id: string }; purpose: string; now: string; executionId?: string; runId?: string },
): Output {
  const body: MessageOf<'agent_log'> = {
    msg_type: 'agent_log',
    instance_name: agent.name,
    level: LEVELS[level],
    levelname: level.toUpperCase(),
    message,
    sender: agent.name,
    namespace: agent.namespace,
    created_at: opts.now,
    ...(opts.executionId !== undefined ? { execution_id: opts.executionId } : {}),
    ...(opts.runId !== undefined ? { run_id: opts.runId } : {}),
  };
  return {
    stream: streams.agent(agent.name),
    event: messageEvent(body, { id: deriveId(opts.cause, 'log', agent.name, opts.purpose), cause: opts.cause }),
  };
}

function rejection(agent: AgentIdentity, event: StoredEvent, reason: string, now: string): Output[] {
  return [
    {
      stream: streams.agent(agent.name),
      event: domainEvent(
        'MessageRejected',
        {
          agent: agent.name,
          reason,
          original_event_id: event.id,
          original_type: event.type,
          original_stream: event.streamName,
          original_position: Number(event.position),
        },
        { id: deriveId(event, 'rejected', agent.name), namespace: agent.namespace, cause: event },
      ),
    },
    logLine(agent, 'warning', `rejected ${event.type} at position ${event.position}: ${reason}`, {
      cause: event,
      purpose: 'rejected',
      now,
    }),
  ];
}

/** The namespace an event belongs to: the body's, else the metadata's; undefined when it has none. */
function namespaceOf(event: StoredEvent): string | undefined {
  const d = event.data as { namespace?: unknown } | null;
  if (d && typeof d.namespace === 'string') return d.namespace;
  const m = event.metadata as { namespace?: unknown } | null;
  return m && typeof m.namespace === 'string' ? m.namespace : undefined;
}

/**
 * Whether an event came in by `swf import` (its metadata says `imported: true`). An imported run is history: no
 * agent acts on it, or a store that already ran agents would process the run a second time (with `--renumber`,
 * under new ids that nothing deduplicates). Checked by the live runtime, not by `decide`, so that `swf replay
 * --check` can still feed an imported run's inputs to the agents.
 */
export function isImported(event: { metadata?: unknown }): boolean {
  const m = event.metadata;
  return typeof m === 'object' && m !== null && (m as { imported?: unknown }).imported === true;
}

/** Decides what to do with one stored event: parse it, check its namespace, hand it to the agent. */
export function decide(agent: Agent, event: StoredEvent, ctx: HandleContext): Output[] {
  const known = isMessageType(event.type) || isDomainEventType(event.type);
  if (known && !agent.handles.has(event.type)) return [];
  const ns = namespaceOf(event);
  // Agents ignore other namespaces (an event without one is accepted, as in the testbed).
  if (ns !== undefined && ns !== agent.namespace) return [];
  let parsed: ParsedEvent;
  try {
    // What this agent sent itself was checked against the schema when it was written (the fast processing agent
    // reads its 100,000 `slice` messages back): the fields it reads are checked, the rest not again.
    const own = (event.data as { sender?: unknown } | null)?.sender === agent.name;
    parsed = (own ? fastParse(event) : undefined) ?? parseEvent(event);
  } catch (e: unknown) {
    return ctx.replaying ? [] : rejection(agent, event, describeError(e), ctx.now);
  }
  try {
    return agent.handle(event, parsed, ctx);
  } catch (e: unknown) {
    // A well-formed message the agent cannot act on (an execution it never saw, a sample it cannot slice) is
    // rejected like a malformed one; anything else is a bug and stops the agent.
    if (!isSwfError(e)) throw e;
    return ctx.replaying ? [] : rejection(agent, event, describeError(e), ctx.now);
  }
}

/** Whether process `pid` on `host` is alive, as far as this host can tell (another host's: assumed gone). */
function processAlive(pid: unknown, host: unknown, ownHost: string): boolean {
  return processState(pid, host, ownHost) === 'alive';
}

/**
 * Claims an agent's name on the store before it does anything: its last heartbeat must say it exited, or name a
 * process that is gone (a crash), and the STARTING heartbeat is appended at the exact revision read, so of two
 * processes starting the same agent at the same moment, one loses. Two live agents of one name would process the
 * same events, share a checkpoint and fail on each other's outputs.
 */
export async function claimAgentName(
  store: EventStore,
  agent: AgentIdentity,
  starting: Output,
  ownHost: string,
): Promise<void> {
  const stream = streams.agent(agent.name);
  let head: bigint | 'no_stream' = 'no_stream';
  let last: { operational_state?: unknown; pid?: unknown; hostname?: unknown } | undefined;
  try {
    for await (const e of store.readStream(stream, { direction: 'backwards', maxCount: 10_000 })) {
      if (head === 'no_stream') head = e.revision;
      if (e.type === 'agent_heartbeat') {
        last = e.data as typeof last;
        break;
      }
    }
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  const busy = (): IllegalStateError =>
    new IllegalStateError(
      `agent ${agent.name} is already running on ${store.url}` +
        (typeof last?.pid === 'number' ? ` (process ${last.pid})` : '') +
        '; stop it first, or run this one under another user name (USER=...)',
    );
  if (last && last.operational_state !== 'EXITED' && processAlive(last.pid, last.hostname, ownHost)) throw busy();
  try {
    await store.appendToStream(stream, [starting.event], { expectedRevision: head });
  } catch (e: unknown) {
    if (isExpectedVersionConflict(e)) throw busy();
    throw e;
  }
}

/** Sleeps `ms` of wall time, or less if `interrupt` resolves first. */
export function wallSleep(ms: number, interrupt?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void interrupt?.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Events decided per commit, at most. */
const BATCH = 500;

export interface RunningAgent {
  /**
   * Resolves once the agent has claimed its name (its STARTING heartbeat is committed); rejects with an
   * IllegalStateError when another live process runs an agent of that name on this store.
   */
  started: Promise<void>;
  /** Resolves when the agent has stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** Runs an agent until `stop()`: history (if stateful), then the live subscription, plus its deadline timer. */
export function startAgent(agent: Agent, options: RuntimeOptions): RunningAgent {
  const { store, clock, logger } = options;
  const writer = new StreamWriter(store);
  const checkpointName = `${agent.namespace}:${agent.name}`;
  let stopping = false;
  let subscription: Subscription | undefined;
  let wakeTimer: (() => void) | undefined;
  const pid = options.pid ?? 0;
  const hostname = options.hostname ?? 'localhost';
  let beat = 0;
  const beatOutput = (state: 'STARTING' | 'READY' | 'PROCESSING' | 'EXITED'): Output =>
    heartbeat(agent, state, {
      id: deriveId(checkpointName, 'heartbeat', clock.now(), beat++, pid),
      now: clock.iso(),
      pid,
      hostname,
    });

  // Commits one decision at a time, in order: the event loop and the deadline timer share it.
  let queue: Promise<void> = Promise.resolve();
  const serialized = (fn: () => Promise<void>): Promise<void> => {
    const next = queue.then(fn);
    queue = next.catch(() => {});
    return next;
  };

  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => (markReady = r));
  let signalStop: () => void = () => {};
  const stopSignal = new Promise<void>((r) => (signalStop = r));
  const started = claimAgentName(store, agent, beatOutput('STARTING'), hostname);
  let claimed = false;

  const loop = async (): Promise<void> => {
    await started;
    claimed = true;
    const checkpoint = await store.checkpoints.get(checkpointName);
    const filter = { streamPrefix: [...agent.streamPrefixes] };
    const from: 'start' | bigint = checkpoint ?? options.startFrom ?? 'start';
    if (agent.stateful && checkpoint !== undefined) {
      // Fold the history up to the checkpoint without appending: the outputs are already stored.
      let n = 0;
      for await (const e of store.readAll({ filter })) {
        if (e.position > checkpoint) break;
        if (!isImported(e)) decide(agent, e, { now: clock.iso(), replaying: true });
        n++;
      }
      logger.debug({ agent: agent.name, events: n }, 'state rebuilt from history');
    }
    await writer.commit([beatOutput('READY')]);
    subscription = store.subscribeToAll({ from, filter });
    markReady();
    // Stopped while starting (a signal during the history fold): stop() found no subscription to end.
    if (stopping) {
      await subscription.unsubscribe();
      return;
    }
    const iterator = subscription[Symbol.asyncIterator]();
    for (;;) {
      const next = await clock.idle(iterator.next());
      if (next.done || stopping) break;
      // Group commit: decide every event already available, then commit all outputs with the last checkpoint.
      const batch = [next.value, ...(subscription.drain?.(BATCH - 1) ?? [])];
      await serialized(async () => {
        const ctx = { now: clock.iso(), replaying: false };
        const outputs = batch.flatMap((event) => (isImported(event) ? [] : decide(agent, event, ctx)));
        await writer.commit(outputs, { name: checkpointName, position: batch[batch.length - 1]!.position });
      });
      for (const event of batch) agent.afterEvent?.(event);
      wakeTimer?.();
    }
  };

  const timer = async (): Promise<void> => {
    if (!agent.nextDeadline || !agent.onDeadline) return;
    while (!stopping && !clock.isShutDown) {
      const deadline = agent.nextDeadline();
      if (deadline === undefined || deadline > clock.now()) {
        // Sleep to the deadline, or until the event loop changes the agent's state.
        const changed = new Promise<void>((resolve) => (wakeTimer = resolve));
        if (deadline === undefined) await clock.idle(changed);
        else await clock.sleepUntil(deadline, changed);
        wakeTimer = undefined;
        continue;
      }
      await serialized(async () => {
        const outputs = agent.onDeadline!(clock.now(), { now: clock.iso(), replaying: false });
        if (outputs.length > 0) await writer.commit(outputs);
      });
      await new Promise((r) => setImmediate(r));
    }
  };

  const heartbeats = async (): Promise<void> => {
    if (!options.heartbeatSeconds) return;
    await clock.idle(started);
    while (!stopping && !clock.isShutDown) {
      // A wall-clock wait, idle for a virtual clock; interrupted by stop(): an idle agent stops at once.
      await clock.idle(wallSleep(options.heartbeatSeconds * 1000, stopSignal));
      if (stopping || clock.isShutDown) break;
      await serialized(() => writer.commit([beatOutput('READY')]));
    }
  };

  const done = (async () => {
    try {
      await Promise.all([
        clock.task(loop),
        clock.task(async () => {
          // The timer starts once the loop has rebuilt the state.
          await clock.idle(ready);
          await timer();
        }),
        clock.task(heartbeats),
      ]);
    } catch (e: unknown) {
      if (claimed) logger.error({ agent: agent.name, err: describeError(e) }, 'agent failed');
      throw e;
    } finally {
      // An agent that lost the claim leaves the name's heartbeats to the one that holds it.
      if (claimed) await writer.commit([beatOutput('EXITED')]).catch(() => {});
    }
  })();
  started.catch(() => {});

  return {
    started,
    done,
    async stop() {
      stopping = true;
      signalStop();
      markReady();
      wakeTimer?.();
      await subscription?.unsubscribe();
      await done.catch(() => {});
    },
  };
}
