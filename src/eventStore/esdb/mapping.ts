/**
 * Pure translations between the port and `@eventstore/db-client`: revisions, positions, events, filters,
 * group settings and errors. No I/O here, so all of it is unit-tested without a server
 * (test/eventStore/esdb.mapping.unit.test.ts); `esdbEventStore.ts` only wires these to the client.
 */
import {
  ANY,
  BACKWARDS,
  END,
  ErrorType,
  FORWARDS,
  NO_STREAM,
  PARK,
  RETRY,
  ROUND_ROBIN,
  SKIP,
  START,
  STREAM_EXISTS,
  UNBOUNDED,
  convertToCommandError,
  eventTypeFilter,
  excludeSystemEvents,
  isCommandError,
  persistentSubscriptionToStreamSettingsFromDefaults,
  streamNameFilter,
  type AppendExpectedRevision,
  type AppendResult as ClientAppendResult,
  type CommandError,
  type Direction as ClientDirection,
  type EventData,
  type Filter,
  type JSONType,
  type PersistentAction,
  type PersistentSubscriptionToStreamSettings,
  type Position as ClientPosition,
  type ReadPosition,
  type ReadRevision,
} from '@eventstore/db-client';
import {
  ConcurrencyError,
  IllegalStateError,
  isStoreUnavailableError,
  isSwfError,
  NotFoundError,
  StoreCorruptError,
  StoreUnavailableError,
  ValidationError,
} from '../../errors.js';
import {
  type Direction,
  type EventFilter,
  type ExpectedRevision,
  ExpectedVersionConflictError,
  type GroupEvent,
  type GroupOptions,
  type NackAction,
  type ParkedEvent,
  type Position,
  type ReadFrom,
  type StoredEvent,
  StreamNotFoundError,
} from '../eventStore.js';
import { matchesFilter, type PreparedEvent } from '../validation.js';

// ---- connection strings --------------------------------------------------------------------------

const SCHEME = /^(esdb|kurrentdb|kurrent)(\+discover)?:\/\//i;
/** The client's own credentials rule (`user:password@` right after the scheme). */
const CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/)[^:@]+:[^@]+@/i;

/**
 * The client (v6) only parses `esdb://` and `esdb+discover://`; `kurrentdb://` and `kurrent://` name the same
 * server (its newer brand), so they are rewritten rather than refused.
 */
export function toClientConnectionString(url: string): string {
  const m = SCHEME.exec(url);
  if (!m) {
    throw new ValidationError(
      `'${redactConnectionString(url)}' is not an EventStoreDB connection string (use esdb://host:2113?tls=false)`,
      { field: 'store' },
    );
  }
  return `esdb${m[2] ?? ''}://${url.slice(m[0].length)}`;
}

/** The connection string without `user:password@`, fit for messages and logs. */
export const redactConnectionString = (url: string): string => url.replace(CREDENTIALS, '$1');

// ---- append size ---------------------------------------------------------------------------------

/**
 * The server's default `MaxAppendSize` (EventStore 24.10 `src/EventStore.Core/Configuration/ClusterVNodeOptions.cs`:
 * `MaxAppendSize = 1_024 * 1_024`). The adapter splits appends to stay under it.
 */
export const SERVER_DEFAULT_MAX_APPEND_SIZE = 1_048_576;
/**
 * The largest `MaxAppendSize` a server starts with: `TFConsts.EffectiveMaxLogRecordSize`, 16 MiB - 10,000
 * (`src/EventStore.Core/TransactionLog/Chunks/TFConsts.cs`; checked in `ClusterVNodeOptionsValidator.cs`).
 */
export const SERVER_MAX_APPEND_SIZE_LIMIT = 16 * 1024 * 1024 - 10_000;

const MAX_APPEND_SIZE_PARAM = /([?&])maxAppendSize=([^&#]*)&?/i;

export interface ParsedConnectionString {
  /** What the client parses (`esdb://`, without our own parameters). */
  client: string;
  /** Bytes per append, as the server counts them; larger appends are sent in parts. */
  maxAppendBytes: number;
}

/**
 * Our own `maxAppendSize=<bytes>` query parameter (the server's `MaxAppendSize`, when it runs with another value) is
 * taken out before the client sees the string: the client warns on keys it does not know.
 */
export function parseConnectionString(url: string): ParsedConnectionString {
  const client = toClientConnectionString(url);
  const m = MAX_APPEND_SIZE_PARAM.exec(client);
  if (!m) return { client, maxAppendBytes: SERVER_DEFAULT_MAX_APPEND_SIZE };
  const raw = m[2] ?? '';
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1 || value > SERVER_MAX_APPEND_SIZE_LIMIT) {
    throw new ValidationError(
      `invalid maxAppendSize ${JSON.stringify(raw)} in '${redactConnectionString(url)}': use bytes from 1 to ${SERVER_MAX_APPEND_SIZE_LIMIT} (the server's MaxAppendSize)`,
      { field: 'store' },
    );
  }
  const rest = m[0].endsWith('&') ? m[1]! : '';
  const stripped = client.slice(0, m.index) + rest + client.slice(m.index + m[0].length);
  return { client: stripped.replace(/[?&]$/, ''), maxAppendBytes: value };
}

/**
 * An event's size as the server adds it up against `MaxAppendSize`: data bytes + metadata bytes + 2 bytes per
 * UTF-16 unit of the type (`Event.SizeOnDisk` in `src/EventStore.Core/Data/Event.cs`, summed per event in
 * `src/EventStore.Core/Services/Transport/Grpc/Streams.Append.cs`, which refuses once the sum exceeds the limit).
 * The client sends `JSON.stringify` of the data, which is `PreparedEvent.data` byte for byte.
 */
export const appendSizeOf = (event: PreparedEvent): number =>
  Buffer.byteLength(event.data) + Buffer.byteLength(event.metadata) + event.type.length * 2;

/**
 * Cuts a batch into consecutive parts the server accepts (each at most `maxBytes` as it counts them). An event
 * larger than `maxBytes` on its own goes alone, so the server's refusal names it.
 */
export function splitAppend<E extends PreparedEvent>(events: readonly E[], maxBytes: number): E[][] {
  const parts: E[][] = [];
  let part: E[] = [];
  let size = 0;
  for (const event of events) {
    const n = appendSizeOf(event);
    if (part.length > 0 && size + n > maxBytes) {
      parts.push(part);
      part = [];
      size = 0;
    }
    part.push(event);
    size += n;
  }
  if (part.length > 0 || parts.length === 0) parts.push(part);
  return parts;
}

/**
 * Appends the parts in order, each with the exact revision the previous part reported, so no other writer's events
 * land between them and a repeat of the whole batch is idempotent part by part. The first part carries the caller's
 * expectation. Not atomic: a failure after the first part leaves the earlier parts stored.
 */
export async function appendInParts<E, R extends { nextRevision: bigint }>(
  parts: readonly E[][],
  expected: ExpectedRevision,
  appendPart: (events: E[], expected: ExpectedRevision) => Promise<R>,
): Promise<R> {
  let next: ExpectedRevision = expected;
  let result: R | undefined;
  for (const part of parts) {
    result = await appendPart(part, next);
    next = result.nextRevision;
  }
  if (!result) throw new IllegalStateError('an append needs at least one part');
  return result;
}

// ---- revisions and positions ---------------------------------------------------------------------

export function toClientExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  switch (expected) {
    case 'any':
      return ANY;
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    default:
      return expected;
  }
}

export function fromClientExpectedRevision(expected: AppendExpectedRevision): ExpectedRevision {
  switch (expected) {
    case ANY:
      return 'any';
    case NO_STREAM:
      return 'no_stream';
    case STREAM_EXISTS:
      return 'stream_exists';
    default:
      return expected;
  }
}

/**
 * A log position as the client wants it. Every event appended in one (non-transactional) write has
 * commit = prepare, so our single bigint (the commit position) is enough to rebuild it.
 */
export const toClientPosition = (position: Position): ClientPosition => ({ commit: position, prepare: position });

/** The server answers "no position" with nothing or -1 (which can come back as 2^64 - 1 on the wire). */
const validPosition = (p: bigint | undefined): bigint | undefined =>
  p !== undefined && p >= 0n && p < 0x8000000000000000n ? p : undefined;

export interface MappedAppendResult {
  nextRevision: bigint;
  /** Missing when the server did not report one (an idempotent re-append); the adapter then reads it. */
  position: bigint | undefined;
}

export const fromClientAppendResult = (result: ClientAppendResult): MappedAppendResult => ({
  nextRevision: result.nextExpectedRevision,
  position: validPosition(result.position?.commit),
});

export const toClientDirection = (direction: Direction | undefined): ClientDirection =>
  direction === 'backwards' ? BACKWARDS : FORWARDS;

/** Where a stream read starts (inclusive). Default: the start going forwards, the end going backwards. */
export function readStreamStart(from: ReadFrom | undefined, direction: Direction | undefined): ReadRevision {
  const f = from ?? (direction === 'backwards' ? 'end' : 'start');
  return f === 'start' ? START : f === 'end' ? END : f;
}

/** Where a `$all` read starts. Default: the start going forwards, the end going backwards. */
export function readAllStart(from: ReadFrom | undefined, direction: Direction | undefined): ReadPosition {
  const f = from ?? (direction === 'backwards' ? 'end' : 'start');
  return f === 'start' ? START : f === 'end' ? END : toClientPosition(f);
}

/** Catch-up subscriptions on the server deliver the events after a position or revision, as the port does. */
export function subscribeAllStart(from: ReadFrom | undefined): ReadPosition {
  const f = from ?? 'start';
  return f === 'start' ? START : f === 'end' ? END : toClientPosition(f);
}

export function subscribeStreamStart(from: ReadFrom | undefined): ReadRevision {
  const f = from ?? 'start';
  return f === 'start' ? START : f === 'end' ? END : f;
}

// ---- events --------------------------------------------------------------------------------------

/** The subset of the client's recorded event that we read; the client's own types are assignable to it. */
export interface ClientRecordedEvent {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  created: Date;
  isJson: boolean;
  data: unknown;
  metadata?: unknown;
  position?: ClientPosition;
}

export interface ClientResolvedEvent {
  event?: ClientRecordedEvent;
  link?: ClientRecordedEvent;
  commitPosition?: bigint;
}

export interface ClientPersistentResolvedEvent extends ClientResolvedEvent {
  retryCount: number;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/**
 * A checked event as the client sends it. Data goes as JSON (so the server's projections and UI can read it);
 * metadata goes as the exact bytes `prepareEvents` produced, so `null`, `0` or `""` survive unchanged.
 */
export const toEventData = (event: PreparedEvent): EventData => ({
  id: event.id,
  contentType: 'application/json',
  type: event.type,
  data: JSON.parse(event.data) as JSONType,
  metadata: encoder.encode(event.metadata),
});

function decodeBytes(bytes: Uint8Array): unknown {
  const text = utf8.decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Another writer may have stored binary data; we hand back its JSON when it is JSON, else its text. */
const decodeData = (e: ClientRecordedEvent): unknown => (e.data instanceof Uint8Array ? decodeBytes(e.data) : e.data);

/** The client drops empty metadata (undefined) and keeps unparseable metadata as bytes. */
const decodeMetadata = (metadata: unknown): unknown =>
  metadata === undefined ? {} : metadata instanceof Uint8Array ? decodeBytes(metadata) : metadata;

/** The log position a delivery reports (of an event, a link, or a system record), if any. */
export const recordPosition = (resolved: ClientResolvedEvent): bigint | undefined =>
  validPosition(resolved.event?.position?.commit) ?? validPosition(resolved.commitPosition);

/** The event's own commit position: the record's, else the one the read reported (a link's, for links). */
function positionOfRecord(resolved: ClientResolvedEvent): bigint | undefined {
  const own = validPosition(resolved.event?.position?.commit);
  if (own !== undefined) return own;
  return resolved.link ? undefined : validPosition(resolved.commitPosition);
}

/**
 * A resolved event as our StoredEvent, or undefined when there is no event (a link whose target was deleted).
 * Throws when the server reported no position (servers before 22.6 omit it on stream reads).
 */
export function toStoredEvent(resolved: ClientResolvedEvent): StoredEvent | undefined {
  const e = resolved.event;
  if (!e) return undefined;
  const position = positionOfRecord(resolved);
  if (position === undefined) {
    throw new StoreUnavailableError(
      `EventStoreDB returned event ${e.id} of stream '${e.streamId}' without a log position; swf-es needs EventStoreDB 23.10 or later`,
    );
  }
  return {
    id: e.id,
    type: e.type,
    data: decodeData(e),
    metadata: decodeMetadata(e.metadata),
    streamName: e.streamId,
    revision: e.revision,
    position,
    recordedAt: e.created,
  };
}

/**
 * True for a delivery of an event through a link (a group's replayed parked event, a listed parked event). The
 * server then reports the LINK's log position as the event's: `PersistentSubscriptions.Read.cs` (EventStore 24.10,
 * `ConvertToReadEvent`) builds both records with `e.OriginalPosition`, which for a resolved link is the link's.
 * The original's own position has to be read from its stream.
 */
export const carriesLinkPosition = (resolved: ClientResolvedEvent): boolean =>
  resolved.link !== undefined && resolved.event !== undefined;

/** A group delivery as a GroupEvent; `originalPosition` replaces the link's position a linked delivery carries. */
export function toGroupEvent(
  resolved: ClientPersistentResolvedEvent,
  originalPosition?: Position,
): GroupEvent | undefined {
  const stored = toStoredEvent(
    originalPosition === undefined || !resolved.event
      ? resolved
      : { event: { ...resolved.event, position: toClientPosition(originalPosition) } },
  );
  return stored && { ...stored, retryCount: resolved.retryCount };
}

// ---- internal streams ----------------------------------------------------------------------------

/** Checkpoints live in ordinary streams with this prefix, hidden from `$all` reads like system streams are. */
export const CHECKPOINT_STREAM_PREFIX = 'swf-checkpoint-';
export const CHECKPOINT_EVENT_TYPE = 'CheckpointSet';

/**
 * Events that are not the application's: system streams and types (`$`-prefixed: stream metadata, links,
 * statistics, projections' output, parked messages) and our checkpoint streams.
 */
export const isInternalEvent = (streamName: string, type: string): boolean =>
  streamName.startsWith('$') || type.startsWith('$') || streamName.startsWith(CHECKPOINT_STREAM_PREFIX);

export function checkpointStreamOf(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new ValidationError(`invalid checkpoint name ${JSON.stringify(name)}: use 1-200 characters`, {
      field: 'checkpoint',
    });
  }
  return `${CHECKPOINT_STREAM_PREFIX}${name}`;
}

export function toCheckpointEventData(name: string, position: unknown, id: string): EventData {
  if (typeof position !== 'bigint' || position < 0n) {
    throw new ValidationError(`invalid checkpoint position ${show(position)}: use a bigint >= 0`, {
      field: 'position',
    });
  }
  return {
    id,
    contentType: 'application/json',
    type: CHECKPOINT_EVENT_TYPE,
    data: { name, position: position.toString() },
    metadata: undefined,
  };
}

export function checkpointFrom(resolved: ClientResolvedEvent): Position | undefined {
  const e = resolved.event;
  if (!e) return undefined;
  const data = decodeData(e);
  const raw = typeof data === 'object' && data !== null ? (data as { position?: unknown }).position : undefined;
  if (typeof raw === 'string' && /^\d+$/.test(raw)) return BigInt(raw);
  throw new StoreCorruptError(`checkpoint stream '${e.streamId}' holds an unreadable event ${e.id} (${e.type})`);
}

// ---- filters -------------------------------------------------------------------------------------

export interface FilterPlan {
  /** The filter the server applies to a `$all` subscription. */
  server: Filter;
  /** What the client still checks on every event the server sends (the other filter kind, internal events). */
  accepts: (streamName: string, type: string) => boolean;
}

function prefixesOf(list: unknown, field: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string')) {
    throw new ValidationError(`filter.${field} must be a list of strings`, { field: `filter.${field}` });
  }
  return list;
}

/**
 * Splits a filter between server and client. The server filters on one kind only (stream name OR event
 * type), so: stream prefixes alone → server stream filter; type prefixes alone, or both → server type
 * filter and the stream prefixes on the client; none → the server drops system event types. The client
 * always drops internal events, which a prefix filter lets through.
 */
export function planFilter(
  filter: EventFilter | undefined,
  /** Called with the position the server has searched up to (filtered reads stop on it). */
  checkpointReached?: (position: Position) => void,
): FilterPlan {
  const streamPrefix = prefixesOf(filter?.streamPrefix, 'streamPrefix');
  const eventTypePrefix = prefixesOf(filter?.eventTypePrefix, 'eventTypePrefix');
  const rest: EventFilter = { streamPrefix, eventTypePrefix };
  const accepts = (streamName: string, type: string): boolean =>
    !isInternalEvent(streamName, type) && matchesFilter(rest, streamName, type);
  const checkpoint = checkpointReached && {
    checkpointReached: (_s: unknown, p: ClientPosition): void => checkpointReached(p.commit),
  };
  if (eventTypePrefix.length > 0) {
    return { server: eventTypeFilter({ prefixes: eventTypePrefix, ...checkpoint }), accepts };
  }
  if (streamPrefix.length > 0) return { server: streamNameFilter({ prefixes: streamPrefix, ...checkpoint }), accepts };
  return { server: excludeSystemEvents(checkpoint), accepts };
}

/**
 * Backwards reads of `$all`: client 6.2.1's `readAll` sends no filter (`dist/streams/readAll.js` sets
 * `setNoFilter`) and subscriptions only go forwards, so a backwards read filters on the client.
 */
export function clientPredicate(filter: EventFilter | undefined): (streamName: string, type: string) => boolean {
  return planFilter(filter).accepts;
}

// ---- competing consumers -------------------------------------------------------------------------

export interface GroupPlan {
  settings: PersistentSubscriptionToStreamSettings;
  /** Events in flight to one member (the client's `bufferSize`). */
  bufferSize: number;
}

/** A bad value as it reads in a message. */
const show = (value: unknown): string => {
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return typeof value;
  return JSON.stringify(value);
};

function integerOption(value: unknown, name: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ValidationError(`invalid group option ${name} ${show(value)}: use an integer >= ${min}`, {
      field: name,
    });
  }
  return value;
}

/**
 * The persistent subscription settings for a group. Round robin spreads events over members; the server
 * checkpoints often (after 1 s or 1 event) so a restarted server redelivers little.
 */
export function planGroup(options: GroupOptions = {}): GroupPlan {
  const maxRetryCount = integerOption(options.maxRetryCount, 'maxRetryCount', 0, 10);
  const messageTimeout = integerOption(options.ackTimeoutMs, 'ackTimeoutMs', 1, 30_000);
  const bufferSize = integerOption(options.bufferSize, 'bufferSize', 1, 1);
  const from = options.from ?? 'start';
  if (from !== 'start' && from !== 'end') {
    throw new ValidationError(`invalid group option from ${show(from)}: use 'start' or 'end'`, { field: 'from' });
  }
  const settings = persistentSubscriptionToStreamSettingsFromDefaults({
    startFrom: from === 'start' ? START : END,
    resolveLinkTos: false,
    maxRetryCount,
    messageTimeout,
    consumerStrategyName: ROUND_ROBIN,
    maxSubscriberCount: UNBOUNDED,
    readBatchSize: 20,
    liveBufferSize: 500,
    historyBufferSize: 500,
    checkPointAfter: 1_000,
    checkPointLowerBound: 1,
    checkPointUpperBound: 1_000,
    extraStatistics: false,
  });
  return { settings, bufferSize };
}

export function toClientNackAction(action: NackAction): PersistentAction {
  switch (action) {
    case 'retry':
      return RETRY;
    case 'park':
      return PARK;
    case 'skip':
      return SKIP;
    default: {
      const never: never = action;
      throw new ValidationError(`invalid nack action ${JSON.stringify(never)}: use 'retry', 'park' or 'skip'`, {
        field: 'action',
      });
    }
  }
}

/**
 * The client action for a nack. The server parks a retried event that reached `maxRetryCount` under its own
 * reason ("Reached retry count of N"); parking it ourselves at that point keeps the member's reason, as the
 * other stores do. `maxRetryCount` is the group's, as the server has it.
 */
export function nackDecision(action: NackAction, retryCount: number, maxRetryCount: number): PersistentAction {
  if (action === 'retry' && retryCount >= maxRetryCount) return PARK;
  return toClientNackAction(action);
}

/** The server prefixes the member's reason when a nack parks an event. */
const NACK_REASON_PREFIX = "Client explicitly NAK'ed message.\n";

/** Where the server keeps a group's parked events (as links to the originals). */
export const parkedStreamOf = (stream: string, group: string): string =>
  `$persistentsubscription-${stream}::${group}-parked`;

/** The server writes `{ added, reason, subscriptionEventNumber }` (camelCase JSON) as the link's metadata. */
export function toParkedEvent(resolved: ClientResolvedEvent, originalPosition?: Position): ParkedEvent | undefined {
  const event =
    resolved.event &&
    toStoredEvent({
      event:
        originalPosition === undefined
          ? resolved.event
          : { ...resolved.event, position: toClientPosition(originalPosition) },
    });
  if (!event) return undefined;
  const meta = resolved.link?.metadata;
  const fields = typeof meta === 'object' && meta !== null && !(meta instanceof Uint8Array) ? meta : {};
  const pick = (key: string): unknown =>
    (fields as Record<string, unknown>)[key] ??
    (fields as Record<string, unknown>)[key[0]!.toUpperCase() + key.slice(1)];
  const reason = pick('reason');
  const added = pick('added');
  const addedAt = typeof added === 'string' ? new Date(added) : undefined;
  const parkedAt = addedAt && !Number.isNaN(addedAt.getTime()) ? addedAt : (resolved.link?.created ?? event.recordedAt);
  const text = typeof reason === 'string' ? reason : '';
  return {
    event,
    reason: text.startsWith(NACK_REASON_PREFIX) ? text.slice(NACK_REASON_PREFIX.length) : text,
    parkedAt,
  };
}

// ---- errors --------------------------------------------------------------------------------------

export interface ErrorContext {
  /** The connection string, already without credentials. */
  connection: string;
  stream?: string;
  expected?: ExpectedRevision;
  group?: string;
}

function asCommandError(error: Error): CommandError | undefined {
  if (isCommandError(error)) return error;
  // Some client paths (appendToStream) reject with the raw gRPC error; give it the same treatment.
  if ('code' in error && typeof error.code === 'number' && 'details' in error) {
    const converted = convertToCommandError(error);
    return isCommandError(converted) ? converted : undefined;
  }
  return undefined;
}

/**
 * The one place client errors become ours (STYLE.md: translate at the boundary). Our own errors pass
 * through; anything that is not the client's is returned as it is (a bug should surface as itself).
 */
export function translateError(error: unknown, ctx: ErrorContext): Error {
  if (isSwfError(error)) return error;
  if (!(error instanceof Error))
    return new StoreUnavailableError(`EventStoreDB at ${ctx.connection} failed: ${String(error)}`);
  const where = `EventStoreDB at ${ctx.connection}`;
  const group = `group '${ctx.group ?? ''}' on stream '${ctx.stream ?? ''}'`;
  const cause = { cause: error };
  const e = asCommandError(error);
  if (!e) {
    if (/Failed to discover/i.test(error.message)) {
      return new StoreUnavailableError(`${where} is unavailable: ${error.message}`, cause);
    }
    return error;
  }
  switch (e.type) {
    case ErrorType.WRONG_EXPECTED_VERSION:
      return new ExpectedVersionConflictError(
        ctx.stream ?? e.streamName,
        ctx.expected ?? fromClientExpectedRevision(e.expectedVersion),
        e.actualVersion,
      );
    case ErrorType.STREAM_NOT_FOUND:
      return new StreamNotFoundError(ctx.stream ?? e.streamName);
    case ErrorType.STREAM_DELETED:
      return new StreamNotFoundError(ctx.stream ?? e.streamName);
    case ErrorType.NO_STREAM:
      return new StreamNotFoundError(ctx.stream ?? '');
    case ErrorType.PERSISTENT_SUBSCRIPTION_DOES_NOT_EXIST:
      return new NotFoundError(`${group} does not exist in ${where}`, cause);
    case ErrorType.PERSISTENT_SUBSCRIPTION_EXISTS:
      return new ConcurrencyError(`${group} already exists in ${where}`, cause);
    case ErrorType.MAXIMUM_SUBSCRIBERS_REACHED:
      return new IllegalStateError(`${group} has reached its maximum number of members in ${where}`, cause);
    case ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED:
      return new ValidationError(
        `append to '${ctx.stream ?? ''}' is larger than ${where} accepts (${e.maxAppendSize} bytes)`,
        { field: 'events' },
        cause,
      );
    case ErrorType.INVALID_ARGUMENT:
      return new ValidationError(`${where} refused an argument: ${e.message}`, {}, cause);
    case ErrorType.ACCESS_DENIED:
      return new StoreUnavailableError(
        `${where} denied access (check the user and password in the connection string): ${e.message}`,
        cause,
      );
    case ErrorType.UNSUPPORTED:
      return new StoreUnavailableError(`${where} is too old: ${e.message}`, cause);
    case ErrorType.UNAVAILABLE:
    case ErrorType.DEADLINE_EXCEEDED:
    case ErrorType.TIMEOUT:
    case ErrorType.NOT_LEADER:
    case ErrorType.CANCELLED:
    case ErrorType.PERSISTENT_SUBSCRIPTION_DROPPED:
    case ErrorType.PERSISTENT_SUBSCRIPTION_FAILED:
      return new StoreUnavailableError(`${where} is unavailable: ${e.message}`, cause);
    default:
      return new StoreUnavailableError(`${where} failed: ${e.message}`, cause);
  }
}

/**
 * Errors after which a subscription is worth opening again: the server or the connection went away
 * (unavailable, deadline, a server-side cancel, not the leader any more, a dropped persistent subscription), or a
 * failure the client could not classify. Access denied, a deleted group or a bad argument will not heal by retrying.
 */
export function isTransientError(error: unknown): boolean {
  if (!(error instanceof Error) || isSwfError(error)) return isStoreUnavailableError(error);
  const e = asCommandError(error);
  if (!e) return /Failed to discover|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up/i.test(error.message);
  switch (e.type) {
    case ErrorType.UNAVAILABLE:
    case ErrorType.DEADLINE_EXCEEDED:
    case ErrorType.TIMEOUT:
    case ErrorType.CANCELLED:
    case ErrorType.NOT_LEADER:
    case ErrorType.UNKNOWN:
    case ErrorType.PERSISTENT_SUBSCRIPTION_DROPPED:
      return true;
    default:
      return false;
  }
}

/** True for the error the server gives when a group already exists (two members creating it at once). */
export function isGroupExistsError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = asCommandError(error);
  return e?.type === ErrorType.PERSISTENT_SUBSCRIPTION_EXISTS;
}

export function isStreamNotFoundError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = asCommandError(error);
  return e?.type === ErrorType.STREAM_NOT_FOUND || e?.type === ErrorType.STREAM_DELETED;
}
