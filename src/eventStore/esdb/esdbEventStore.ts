/**
 * The EventStoreDB adapter (`esdb://host:2113?tls=false`), over `@eventstore/db-client` v6.
 *
 * - Positions are EventStoreDB commit positions; revisions are the server's stream revisions.
 * - `$all` reads and subscriptions hide system events (`$` streams and types) and our checkpoint streams.
 * - Catch-up subscriptions filter on the server (one filter kind) and finish on the client.
 * - Competing consumers are persistent subscriptions to the stream; parked events are the server's.
 * - Checkpoints are one stream per subscriber holding only its last event (`$maxCount` 1).
 * - `commit` is not atomic (EventStoreDB has no multi-stream transaction): the appends run in order, then the
 *   checkpoint; the agents' derived event ids and exact expected revisions make a re-run after a crash harmless.
 *
 * Written from the client's API and type declarations; the mapping is unit-tested without a server and the
 * contract suite runs against a server when EVENTSTORE_CONNECTION_STRING is set (docs/eventstoredb.md).
 */
import { randomUUID } from 'node:crypto';
import { BACKWARDS, END, EventStoreDBClient, FORWARDS, type StreamingRead } from '@eventstore/db-client';
import { StoreUnavailableError, SwfError, ValidationError } from '../../errors.js';
import {
  StoreClosedError,
  type AppendResult,
  type Checkpoint,
  type CheckpointStore,
  type CommitResult,
  type EventStore,
  type ExpectedRevision,
  type GroupOptions,
  type NewEvent,
  type ParkedEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type StreamAppend,
  type SubscribeToAllOptions,
  type SubscribeToStreamOptions,
} from '../eventStore.js';
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
  isStreamNotFoundError,
  parkedStreamOf,
  planFilter,
  planGroup,
  readAllStart,
  readStreamStart,
  redactConnectionString,
  subscribeAllStart,
  subscribeStreamStart,
  toCheckpointEventData,
  toClientConnectionString,
  toClientDirection,
  toClientExpectedRevision,
  toClientPosition,
  toEventData,
  toParkedEvent,
  toStoredEvent,
  translateError,
} from './mapping.js';
import { CatchUpSubscription, type Closable, EsdbGroupSubscription, confirmed } from './subscriptions.js';

export interface EventStoreDBStoreOptions {
  /** `esdb://[user:password@]host:2113?tls=false` (also `esdb+discover://`, `kurrentdb://`). */
  connectionString: string;
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

function connect(connectionString: string, redacted: string): EventStoreDBClient {
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw new ValidationError('EventStoreDB connection string is empty', { field: 'store' });
  }
  try {
    return EventStoreDBClient.connectionString(toClientConnectionString(connectionString));
  } catch (error: unknown) {
    if (error instanceof SwfError) throw error;
    throw new ValidationError(
      `invalid EventStoreDB connection string '${redacted}': ${error instanceof Error ? error.message : String(error)}`,
      { field: 'store' },
    );
  }
}

export function getEventStoreDBEventStore(options: EventStoreDBStoreOptions): EventStore {
  const connection = redactConnectionString(String(options.connectionString));
  const client = connect(options.connectionString, connection);
  const context = (extra: Omit<ErrorContext, 'connection'> = {}): ErrorContext => ({ connection, ...extra });

  let closed = false;
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

  /** Iterates a client read, translating its errors and cancelling the call when the consumer stops early. */
  async function* drain(
    read: StreamingRead<ClientResolvedEvent>,
    ctx: ErrorContext,
  ): AsyncGenerator<ClientResolvedEvent> {
    let finished = false;
    try {
      for await (const resolved of read) yield resolved;
      finished = true;
    } catch (error: unknown) {
      finished = true;
      throw translateError(error, ctx);
    } finally {
      if (!finished) await read.cancel().catch(() => undefined);
    }
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
    let result;
    try {
      result = fromClientAppendResult(
        await client.appendToStream(stream, events.map(toEventData), {
          expectedRevision: toClientExpectedRevision(expected),
        }),
      );
    } catch (error: unknown) {
      throw translateError(error, context({ stream, expected }));
    }
    // An idempotent re-append reports no position: read it from the event the server points at.
    const position = result.position ?? (await positionAt(stream, result.nextRevision));
    return { nextRevision: result.nextRevision, position };
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
      if (typeof from === 'bigint' && backwards) {
        // The server reads backwards from a position exclusively; the port includes the event at `from`.
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
        if (typeof from === 'bigint' && (backwards ? event.position >= from : event.position < from)) continue;
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
        if (error instanceof SwfError && error.code === 'NOT_FOUND') return undefined;
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
      for await (const resolved of client.readStream(parkedStream, { resolveLinkTos: true })) {
        const r = resolved as ClientResolvedEvent;
        last = (r.link ?? r.event)?.revision ?? last;
        // An unresolved link comes back as the link itself ($>): its target is gone.
        if (!r.link || !r.event || r.event.type.startsWith('$')) continue;
        const p = toParkedEvent(r);
        if (p) parked.push(p);
      }
    } catch (error: unknown) {
      if (isStreamNotFoundError(error)) return { parked: [] };
      throw translateError(error, context({ stream, group }));
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
    capabilities: { idempotentWithAnyRevision: false, atomicCommit: false, uniqueEventIds: false },
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
      const source = client.subscribeToAll({ fromPosition: subscribeAllStart(from), filter: plan.server });
      if (from === 'end') waitFor(confirmed(source));
      return track(
        new CatchUpSubscription(
          source,
          (resolved) => {
            const raw = resolved.event;
            if (!raw || !plan.accepts(raw.streamId, raw.type)) return undefined;
            const event = toStoredEvent(resolved);
            return event && (typeof from !== 'bigint' || event.position > from) ? event : undefined;
          },
          context(),
          untrack,
        ),
      );
    },

    subscribeToStream(stream: string, opts: SubscribeToStreamOptions = {}) {
      ensureOpen();
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      const from = opts.from;
      const source = client.subscribeToStream(stream, { fromRevision: subscribeStreamStart(from) });
      if (from === 'end') waitFor(confirmed(source));
      return track(
        new CatchUpSubscription(
          source,
          (resolved) => {
            const event = toStoredEvent(resolved);
            return event && (typeof from !== 'bigint' || event.revision > from) ? event : undefined;
          },
          context({ stream }),
          untrack,
        ),
      );
    },

    subscribeToGroup(stream: string, group: string, opts: GroupOptions = {}) {
      ensureOpen();
      assertStreamName(stream);
      assertGroupName(group);
      const plan = planGroup(opts);
      const subscription = new EsdbGroupSubscription(client, stream, group, plan, context({ stream, group }), untrack);
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
      await Promise.allSettled([...live].map((s) => s.unsubscribe()));
      await client.dispose();
    },
  };
  return store;
}
