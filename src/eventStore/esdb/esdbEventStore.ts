/**
 * The EventStoreDB adapter (`esdb://host:2113?tls=false`), over `@eventstore/db-client` v6.
 *
 * - Positions are EventStoreDB commit positions; revisions are the server's stream revisions.
 * - `$all` reads and subscriptions hide system events (`$` streams and types) and our checkpoint streams.
 * - Catch-up subscriptions filter on the server (one filter kind) and finish on the client.
 * - Competing consumers are persistent subscriptions to the stream; parked events are the server's.
 * - Checkpoints are one stream per subscriber holding only its last event (`$maxCount` 1).
 * - Appends over the server's MaxAppendSize go in parts chained by exact revisions (not atomic beyond it).
 * - `commit` is not atomic (EventStoreDB has no multi-stream transaction): the appends run in order, then the
 *   checkpoint; the agents' derived event ids and exact expected revisions make a re-run after a crash harmless.
 *
 * Written from the client's API and type declarations; the mapping is unit-tested without a server and the
 * contract suite runs against a server when EVENTSTORE_CONNECTION_STRING is set (docs/eventstoredb.md).
 */
import { randomUUID } from 'node:crypto';
import { BACKWARDS, END, EventStoreDBClient, FORWARDS, START, type StreamingRead } from '@eventstore/db-client';
import {
  IllegalStateError,
  isNotFoundError,
  isStreamNotFoundError,
  isSwfError,
  StoreUnavailableError,
  ValidationError,
} from '../../errors.js';
import type {
  AppendResult,
  Checkpoint,
  CheckpointStore,
  CommitResult,
  EventStore,
  ExpectedRevision,
  GroupOptions,
  NewEvent,
  ParkedEvent,
  Position,
  ReadAllOptions,
  ReadStreamOptions,
  StoredEvent,
  StreamAppend,
  SubscribeToAllOptions,
  SubscribeToStreamOptions,
} from '../eventStore.js';
import { StoreClosedError } from '../eventStore.js';
import {
  assertExpectedRevision,
  assertGroupName,
  assertReadFrom,
  assertStreamName,
  maxCountOf,
  type PreparedEvent,
  prepareEvents,
} from '../validation.js';
import {
  CHECKPOINT_STREAM_PREFIX,
  type ClientResolvedEvent,
  type ErrorContext,
  checkpointFrom,
  checkpointStreamOf,
  clientPredicate,
  fromClientAppendResult,
  parkedStreamOf,
  planFilter,
  planGroup,
  readAllStart,
  readStreamStart,
  recordPosition,
  redactConnectionString,
  subscribeAllStart,
  subscribeStreamStart,
  toCheckpointEventData,
  appendInParts,
  parseConnectionString,
  splitAppend,
  toClientDirection,
  toClientExpectedRevision,
  toClientPosition,
  toEventData,
  toParkedEvent,
  toStoredEvent,
  translateError,
} from './mapping.js';
import {
  CatchUpSubscription,
  type Closable,
  DEFAULT_RESUBSCRIBE,
  EsdbGroupSubscription,
  type ResubscribePolicy,
  type StoreLogger,
  confirmed,
} from './subscriptions.js';
import { ReadableQueue } from './readableQueue.js';

export interface EventStoreDBStoreOptions {
  /**
   * `esdb://[user:password@]host:2113?tls=false` (also `esdb+discover://`, `kurrentdb://`). Our own parameter
   * `maxAppendSize=<bytes>` tells the adapter the server's `MaxAppendSize` when it is not the default 1 MiB.
   */
  connectionString: string;
  /** Where the adapter reports a dropped subscription it restores (pino's `warn` fits). */
  logger?: StoreLogger | undefined;
  /** Backoff between attempts to restore a dropped subscription. Default 250 ms doubling to 10 s. */
  resubscribe?: Partial<Pick<ResubscribePolicy, 'initialDelayMs' | 'maxDelayMs'>>;
}

/** After replaying parked events, how long to wait for the server to drop them from the parked stream. */
const REPLAY_SETTLE_MS = 5_000;
const POLL_MS = 50;

function assertAppendableStream(stream: unknown): asserts stream is string {
  assertStreamName(stream);
  if (stream.startsWith(CHECKPOINT_STREAM_PREFIX)) {
    throw new ValidationError(`stream name '${stream}' is reserved for checkpoints`, { field: 'stream' });
  }
}

function connect(connectionString: string, redacted: string): { client: EventStoreDBClient; maxAppendBytes: number } {
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw new ValidationError('EventStoreDB connection string is empty', { field: 'store' });
  }
  const parsed = parseConnectionString(connectionString);
  try {
    return { client: EventStoreDBClient.connectionString(parsed.client), maxAppendBytes: parsed.maxAppendBytes };
  } catch (error: unknown) {
    if (isSwfError(error)) throw error;
    throw new ValidationError(
      `invalid EventStoreDB connection string '${redacted}': ${error instanceof Error ? error.message : String(error)}`,
      { field: 'store' },
    );
  }
}

/** The client calls the adapter makes: the real client, or a test's stand-in (a seam for what needs a server). */
export type EsdbClient = Pick<
  EventStoreDBClient,
  | 'appendToStream'
  | 'readStream'
  | 'readAll'
  | 'subscribeToAll'
  | 'subscribeToStream'
  | 'setStreamMetadata'
  | 'getStreamMetadata'
  | 'replayParkedMessagesToStream'
  | 'createPersistentSubscriptionToStream'
  | 'getPersistentSubscriptionToStreamInfo'
  | 'subscribeToPersistentSubscriptionToStream'
  | 'dispose'
>;

export function getEventStoreDBEventStore(options: EventStoreDBStoreOptions, clientForTests?: EsdbClient): EventStore {
  const connection = redactConnectionString(String(options.connectionString));
  const connected = connect(options.connectionString, connection);
  const { maxAppendBytes } = connected;
  const client: EsdbClient = clientForTests ?? connected.client;
  const resubscribe: ResubscribePolicy = {
    ...DEFAULT_RESUBSCRIBE,
    ...options.resubscribe,
    logger: options.logger,
  };
  const context = (extra: Omit<ErrorContext, 'connection'> = {}): ErrorContext => ({ connection, ...extra });

  let closed = false;
  /** Fires on close(): reads still running end with `closedDuringRead()` instead of stopping short. */
  const abort = new AbortController();
  const closedDuringRead = (): IllegalStateError =>
    new IllegalStateError(`the EventStoreDB store at ${connection} was closed during a read`);
  const live = new Set<Closable>();
  /** Subscriptions from 'end' (and groups) not yet confirmed; appends wait for them so they see the append. */
  const starting = new Set<Promise<void>>();

  const ensureOpen = (): void => {
    if (closed) throw new StoreClosedError(`at ${connection}`);
  };
  const track = <S extends Closable>(s: S): S => {
    live.add(s);
    return s;
  };
  const untrack = (s: Closable): void => {
    live.delete(s);
  };
  const waitFor = (p: Promise<void>): void => {
    const settled = p.finally(() => starting.delete(settled));
    starting.add(settled);
  };
  const startsSettled = async (): Promise<void> => {
    if (starting.size > 0) await Promise.all(starting);
  };

  /**
   * Iterates a client read, translating its errors and cancelling the call when the consumer stops early. It
   * listens from the moment it is called (an early error is kept for the consumer, not lost) and fails with
   * `closedDuringRead()` when `close()` cuts the read off: `dispose()` cancels the call, which the client treats as
   * no error at all, so the read would otherwise just stop short or never end.
   */
  function drain(read: StreamingRead<ClientResolvedEvent>, ctx: ErrorContext): AsyncGenerator<ClientResolvedEvent> {
    const queue = new ReadableQueue<ClientResolvedEvent>(read, abort.signal, closedDuringRead);
    return (async function* () {
      let finished = false;
      try {
        for await (const resolved of queue) yield resolved;
        if (queue.ending === 'close') {
          throw new StoreUnavailableError(`EventStoreDB at ${connection} ended a read before its end`);
        }
        finished = true;
      } catch (error: unknown) {
        finished = true;
        throw translateError(error, ctx);
      } finally {
        if (!finished) await read.cancel().catch(() => undefined);
      }
    })();
  }

  async function positionAt(stream: string, revision: bigint): Promise<Position> {
    for await (const resolved of drain(
      client.readStream(stream, { fromRevision: revision, maxCount: 1 }),
      context({ stream }),
    )) {
      const event = toStoredEvent(resolved);
      if (event) return event.position;
    }
    throw new StoreUnavailableError(
      `EventStoreDB at ${connection} reported revision ${revision} of '${stream}' but does not return it`,
    );
  }

  async function append(stream: string, events: PreparedEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    await startsSettled();
    const result = await appendInParts(splitAppend(events, maxAppendBytes), expected, async (part, exp) => {
      try {
        return fromClientAppendResult(
          await client.appendToStream(stream, part.map(toEventData), {
            expectedRevision: toClientExpectedRevision(exp),
          }),
        );
      } catch (error: unknown) {
        throw translateError(error, context({ stream, expected: exp }));
      }
    });
    // An idempotent re-append reports no position: read it from the event the server points at.
    const position = result.position ?? (await positionAt(stream, result.nextRevision));
    return { nextRevision: result.nextRevision, position };
  }

  /** The position of the last record in the log, system records included (what a filtered read runs up to). */
  async function logHead(ctx: ErrorContext): Promise<Position | undefined> {
    const last = client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1 });
    for await (const resolved of drain(last, ctx)) return recordPosition(resolved);
    return undefined;
  }

  /**
   * A forward `$all` read filtered on the server: client 6.2.1's `readAll` cannot send a filter, so this is a
   * filtered catch-up subscription read up to the log's head at the start (the server scans the log and sends only
   * matching events, plus a checkpoint now and then, instead of every system and projection link event). It ends
   * at the first sign that the server has searched past the head: an event after it, a checkpoint at or after it
   * (`checkpointReached`), or the `caughtUp` the server sends when its catch-up reaches the end of the log
   * (`Enumerators.AllSubscriptionFiltered.cs`, `GoLive` / `PumpLiveMessages`; client `Subscription.js` emits it).
   */
  async function* filteredForward(
    after: Position | undefined,
    filter: ReadAllOptions['filter'],
    head: Position,
    ctx: ErrorContext,
  ): AsyncGenerator<StoredEvent> {
    // The filter's checkpoint callback exists before the queue it ends.
    const reached: { head?: () => void } = {};
    const plan = planFilter(filter, (position) => {
      if (position >= head) reached.head?.();
    });
    const source = client.subscribeToAll({
      fromPosition: after === undefined ? START : toClientPosition(after),
      filter: plan.server,
    });
    const ending = new ReadableQueue<ClientResolvedEvent>(source, abort.signal, () => closedDuringRead());
    reached.head = () => ending.endWhenDrained();
    source.once('caughtUp', () => ending.endWhenDrained());
    try {
      for await (const resolved of ending) {
        const raw = resolved.event;
        const event = raw && plan.accepts(raw.streamId, raw.type) ? toStoredEvent(resolved) : undefined;
        const position = event?.position ?? recordPosition(resolved);
        if (position !== undefined && position > head) return;
        if (event) yield event;
        if (position !== undefined && position >= head) return;
      }
      if (ending.ending === 'close')
        throw new StoreUnavailableError(`EventStoreDB at ${connection} ended a read early`);
    } catch (error: unknown) {
      throw translateError(error, ctx);
    } finally {
      await source.unsubscribe().catch(() => undefined);
      source.destroy();
    }
  }

  function readAll(opts: ReadAllOptions = {}): AsyncIterable<StoredEvent> {
    assertReadFrom(opts.from, 'from position');
    const max = maxCountOf(opts.maxCount);
    const accepts = clientPredicate(opts.filter);
    const backwards = opts.direction === 'backwards';
    const from = opts.from;
    const ctx = context();
    return (async function* () {
      ensureOpen();
      if (max === 0) return;
      let n = 0;
      if (typeof from === 'bigint') {
        // The server reads backwards from a position exclusively, and subscribes after it; the port includes it.
        const at = client.readAll({ fromPosition: toClientPosition(from), direction: FORWARDS, maxCount: 1 });
        for await (const resolved of drain(at, ctx)) {
          const raw = resolved.event;
          if (!raw || !accepts(raw.streamId, raw.type)) continue;
          const event = toStoredEvent(resolved);
          if (event?.position === from) {
            yield event;
            n++;
          }
        }
        if (n >= max) return;
      }
      if (!backwards) {
        if (from === 'end') return;
        const head = await logHead(ctx);
        if (head === undefined || (typeof from === 'bigint' && from >= head)) return;
        for await (const event of filteredForward(
          typeof from === 'bigint' ? from : undefined,
          opts.filter,
          head,
          ctx,
        )) {
          if (typeof from === 'bigint' && event.position <= from) continue;
          yield event;
          if (++n >= max) return;
        }
        return;
      }
      // No maxCount on the server: it would count the system events we skip.
      const read = client.readAll({
        fromPosition: readAllStart(from, opts.direction),
        direction: toClientDirection(opts.direction),
      });
      for await (const resolved of drain(read, ctx)) {
        const raw = resolved.event;
        if (!raw || !accepts(raw.streamId, raw.type)) continue;
        const event = toStoredEvent(resolved);
        if (!event) continue;
        if (typeof from === 'bigint' && event.position >= from) continue;
        yield event;
        if (++n >= max) return;
      }
    })();
  }

  const checkpoints: CheckpointStore = {
    async get(name) {
      ensureOpen();
      const stream = checkpointStreamOf(name);
      const ctx = context({ stream });
      try {
        const last = client.readStream(stream, { direction: BACKWARDS, fromRevision: END, maxCount: 1 });
        for await (const resolved of drain(last, ctx)) return checkpointFrom(resolved);
        return undefined;
      } catch (error: unknown) {
        if (isNotFoundError(error)) return undefined;
        throw error;
      }
    },
    async set(name, position) {
      ensureOpen();
      const stream = checkpointStreamOf(name);
      const event = toCheckpointEventData(name, position, randomUUID());
      const ctx = context({ stream });
      try {
        const result = await client.appendToStream(stream, event);
        // Only the last checkpoint matters: let the server scavenge the rest.
        if (result.nextExpectedRevision === 0n) await client.setStreamMetadata(stream, { maxCount: 1 });
      } catch (error: unknown) {
        throw translateError(error, ctx);
      }
    },
  };

  async function readParked(stream: string, group: string): Promise<{ parked: ParkedEvent[]; last?: bigint }> {
    const parkedStream = parkedStreamOf(stream, group);
    const parked: ParkedEvent[] = [];
    let last: bigint | undefined;
    try {
      for await (const r of drain(
        client.readStream(parkedStream, { resolveLinkTos: true }),
        context({ stream, group }),
      )) {
        last = (r.link ?? r.event)?.revision ?? last;
        // An unresolved link comes back as the link itself ($>): its target is gone.
        if (!r.link || !r.event || r.event.type.startsWith('$')) continue;
        // The parked stream's links report their own positions as the events': read the originals'.
        const p = toParkedEvent(r, await positionAt(r.event.streamId, r.event.revision));
        if (p) parked.push(p);
      }
    } catch (error: unknown) {
      if (isStreamNotFoundError(error)) return { parked: [] };
      throw error;
    }
    return { parked, last };
  }

  /** The server replays asynchronously and then truncates the parked stream; wait for that (bounded). */
  async function replaySettled(stream: string, group: string, last: bigint): Promise<void> {
    const parkedStream = parkedStreamOf(stream, group);
    const deadline = Date.now() + REPLAY_SETTLE_MS;
    while (Date.now() < deadline) {
      try {
        const { metadata } = await client.getStreamMetadata(parkedStream);
        const tb = metadata?.truncateBefore;
        if (typeof tb === 'number' && BigInt(tb) > last) return;
      } catch {
        return; // cannot tell; the replay itself was accepted
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  const store: EventStore = {
    kind: 'esdb',
    url: connection,
    capabilities: {
      idempotentWithAnyRevision: false,
      atomicCommit: false,
      uniqueEventIds: false,
      atomicAppendBytes: maxAppendBytes,
      // RoundRobinPersistentSubscriptionConsumerStrategy (EventStore 24.10) offers a retried event to the first
      // member in its queue with a free slot, which can be the one whose slot the timeout just freed.
      redeliversToAnotherMember: false,
    },
    checkpoints,

    async appendToStream(stream: string, events: readonly NewEvent[], opts = {}) {
      ensureOpen();
      assertAppendableStream(stream);
      const expected = opts.expectedRevision ?? 'any';
      assertExpectedRevision(expected);
      return append(stream, prepareEvents(events), expected);
    },

    async commit(appends: readonly StreamAppend[], checkpoint?: Checkpoint): Promise<CommitResult> {
      ensureOpen();
      const list: unknown = appends;
      if (!Array.isArray(list)) throw new ValidationError('commit needs a list of appends', { field: 'appends' });
      // Check everything before writing anything.
      const prepared = appends.map((a) => {
        assertAppendableStream(a.stream);
        const expected = a.expectedRevision ?? 'any';
        assertExpectedRevision(expected);
        return { stream: a.stream, events: prepareEvents(a.events), expected };
      });
      if (checkpoint) {
        checkpointStreamOf(checkpoint.name);
        toCheckpointEventData(checkpoint.name, checkpoint.position, randomUUID());
      }
      const results: AppendResult[] = [];
      for (const p of prepared) results.push(await append(p.stream, p.events, p.expected));
      if (checkpoint) await checkpoints.set(checkpoint.name, checkpoint.position);
      return { appends: results };
    },

    readStream(stream: string, opts: ReadStreamOptions = {}) {
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      const max = maxCountOf(opts.maxCount);
      const ctx = context({ stream });
      return (async function* () {
        ensureOpen();
        const read = client.readStream(stream, {
          fromRevision: readStreamStart(opts.from, opts.direction),
          direction: toClientDirection(opts.direction),
          // maxCount 0 still asks for one event, so a missing stream is still reported.
          ...(Number.isFinite(max) ? { maxCount: Math.max(max, 1) } : {}),
        });
        let n = 0;
        for await (const resolved of drain(read, ctx)) {
          if (n >= max) return;
          const event = toStoredEvent(resolved);
          if (!event) continue;
          yield event;
          n++;
        }
      })();
    },

    readAll,

    async headPosition() {
      for await (const event of readAll({ direction: 'backwards', maxCount: 1 })) return event.position;
      return undefined;
    },

    subscribeToAll(opts: SubscribeToAllOptions = {}) {
      ensureOpen();
      assertReadFrom(opts.from, 'from position');
      const plan = planFilter(opts.filter);
      const from = opts.from;
      const subscription = new CatchUpSubscription<Position>(
        (after) => client.subscribeToAll({ fromPosition: subscribeAllStart(after ?? from), filter: plan.server }),
        (resolved, after) => {
          const raw = resolved.event;
          if (!raw || !plan.accepts(raw.streamId, raw.type)) return undefined;
          const event = toStoredEvent(resolved);
          const floor = after ?? (typeof from === 'bigint' ? from : undefined);
          return event && (floor === undefined || event.position > floor) ? event : undefined;
        },
        (event) => event.position,
        context(),
        untrack,
        resubscribe,
      );
      if (from === 'end') waitFor(confirmed(subscription.source));
      return track(subscription);
    },

    subscribeToStream(stream: string, opts: SubscribeToStreamOptions = {}) {
      ensureOpen();
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      const from = opts.from;
      const subscription = new CatchUpSubscription<bigint>(
        (after) => client.subscribeToStream(stream, { fromRevision: subscribeStreamStart(after ?? from) }),
        (resolved, after) => {
          const event = toStoredEvent(resolved);
          const floor = after ?? (typeof from === 'bigint' ? from : undefined);
          return event && (floor === undefined || event.revision > floor) ? event : undefined;
        },
        (event) => event.revision,
        context({ stream }),
        untrack,
        resubscribe,
      );
      if (from === 'end') waitFor(confirmed(subscription.source));
      return track(subscription);
    },

    subscribeToGroup(stream: string, group: string, opts: GroupOptions = {}) {
      ensureOpen();
      assertStreamName(stream);
      assertGroupName(group);
      const plan = planGroup(opts);
      const subscription = new EsdbGroupSubscription(
        client,
        stream,
        group,
        plan,
        context({ stream, group }),
        untrack,
        positionAt,
        resubscribe,
      );
      waitFor(subscription.created);
      return track(subscription);
    },

    async listParked(stream: string, group: string) {
      ensureOpen();
      assertStreamName(stream);
      assertGroupName(group);
      return (await readParked(stream, group)).parked;
    },

    async replayParked(stream: string, group: string) {
      ensureOpen();
      assertStreamName(stream);
      assertGroupName(group);
      const { parked, last } = await readParked(stream, group);
      if (last === undefined) return 0;
      try {
        await client.replayParkedMessagesToStream(stream, group);
      } catch (error: unknown) {
        throw translateError(error, context({ stream, group }));
      }
      await replaySettled(stream, group, last);
      return parked.length;
    },

    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      await Promise.allSettled([...live].map((s) => s.unsubscribe()));
      await client.dispose();
    },
  };
  return store;
}
