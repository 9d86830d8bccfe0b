/**
 * The event store port. Everything in swf-es is an event in this append-only log.
 *
 * Adapters (one folder each): `inMemory/` (tests), `sqlite/` (default, embedded, multi-process on one
 * machine), `postgres/` (PostgreSQL, several hosts), `esdb/` (EventStoreDB). `openEventStore(url)` in `./open.ts` picks one.
 *
 * Conventions (EventStoreDB's, so the adapters agree):
 * - revisions count from 0 within a stream; positions increase strictly over the whole log;
 * - `appendToStream` returns the revision of the last event written (`nextRevision`): pass it as the
 *   next `expectedRevision`;
 * - reads: `from` is inclusive; subscriptions: `from` is exclusive (they deliver the events after it).
 */

export type Revision = bigint;
export type Position = bigint;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | Revision;

export interface NewEvent<Data = unknown, Metadata = unknown> {
  /** UUID; defaults to a fresh one. Re-appending the same ids at the same place is a no-op (idempotency). */
  id?: string;
  type: string;
  data: Data;
  metadata?: Metadata;
}

export interface StoredEvent<Data = unknown, Metadata = unknown> {
  id: string;
  type: string;
  data: Data;
  metadata: Metadata;
  streamName: string;
  revision: Revision;
  position: Position;
  /** When the store recorded it (the store's clock; the workflow's own clock stamps go in data). */
  recordedAt: Date;
}

export interface AppendOptions {
  expectedRevision?: ExpectedRevision;
}

export interface AppendResult {
  /** Revision of the last event written. */
  nextRevision: Revision;
  /** Log position of the last event written. */
  position: Position;
}

export type ReadFrom = 'start' | 'end' | bigint;
export type Direction = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  /** Revision to start at (inclusive). Default: 'start' forwards, 'end' backwards. */
  from?: ReadFrom;
  direction?: Direction;
  maxCount?: number | bigint;
}

/**
 * An event matches when its stream starts with one of `streamPrefix` (if given) AND its type starts with
 * one of `eventTypePrefix` (if given).
 */
export interface EventFilter {
  streamPrefix?: readonly string[];
  eventTypePrefix?: readonly string[];
}

export interface ReadAllOptions {
  /** Position to start at (inclusive). Default: 'start' forwards, 'end' backwards. */
  from?: ReadFrom;
  direction?: Direction;
  maxCount?: number | bigint;
  filter?: EventFilter;
  /**
   * Reading past damaged events (a store file whose bytes were changed): each is reported here and skipped. Without
   * it, a damaged event is a StoreCorruptError naming the store and the event's position. Stores that cannot hold
   * a damaged event never call it.
   */
  onDamaged?: (damaged: DamagedEvent) => void;
}

/** An event a store holds but cannot read back. */
export interface DamagedEvent {
  position: bigint;
  id: string;
  stream: string;
  reason: string;
}

export interface SubscribeToAllOptions {
  /** Deliver the events after this position ('start': all of them; 'end': only new ones). Default 'start'. */
  from?: ReadFrom;
  filter?: EventFilter;
}

export interface SubscribeToStreamOptions {
  /** Deliver the events after this revision. Default 'start'. */
  from?: ReadFrom;
}

/** A catch-up subscription: delivers stored events, then stays live until `unsubscribe()`. */
export interface Subscription<E = StoredEvent> extends AsyncIterable<E> {
  unsubscribe(): Promise<void>;
  /**
   * Takes up to `max` events that are already available without waiting (received, or readable at once), in
   * order, as if iterated. Lets a consumer handle a batch and commit once (group commit). Optional: adapters
   * that cannot tell return nothing.
   */
  drain?(max: number): E[];
}

export interface StreamAppend {
  stream: string;
  events: readonly NewEvent[];
  expectedRevision?: ExpectedRevision;
}

export interface Checkpoint {
  name: string;
  position: Position;
}

export interface CommitResult {
  appends: AppendResult[];
}

export interface CheckpointStore {
  get(name: string): Promise<Position | undefined>;
  set(name: string, position: Position): Promise<void>;
}

// ---- competing consumers -------------------------------------------------------------------------

export type NackAction = 'retry' | 'park' | 'skip';

export interface GroupOptions {
  /** Redeliveries allowed before an event is parked. Default 10. */
  maxRetryCount?: number;
  /** An event neither acked nor nacked within this time goes to another member. Default 30 000. */
  ackTimeoutMs?: number;
  /** Where a new group starts in the stream. Default 'start'. */
  from?: 'start' | 'end';
  /** Events in flight to this member at once. Default 1 (one slice per worker at a time). */
  bufferSize?: number;
  /**
   * A stable name for this member (default: a fresh one). A member that subscribes under the name of one whose
   * process died gets back, first, the events the dead one held, instead of their waiting for the ack timeout
   * (which a virtual clock cannot see). Two live members must not share a name. Stores whose server names the
   * members may ignore it (the events then come back after the ack timeout).
   */
  member?: string;
}

export interface GroupEvent<Data = unknown, Metadata = unknown> extends StoredEvent<Data, Metadata> {
  /** How many times this event was delivered before this delivery. */
  retryCount: number;
}

export interface GroupSubscription<E = GroupEvent> extends AsyncIterable<E> {
  ack(event: E): Promise<void>;
  nack(event: E, action: NackAction, reason: string): Promise<void>;
  unsubscribe(): Promise<void>;
}

export interface ParkedEvent {
  event: StoredEvent;
  reason: string;
  parkedAt: Date;
}

// ---- the store -----------------------------------------------------------------------------------

export interface EventStoreCapabilities {
  /**
   * Re-appending stored ids with expectedRevision 'any' is guaranteed a no-op. EventStoreDB: no, it checks 'any'
   * against an in-memory cache of recent ids that a server restart empties; only exact revisions are guaranteed.
   */
  idempotentWithAnyRevision: boolean;
  /** `commit` writes all its appends and its checkpoint in one transaction. */
  atomicCommit: boolean;
  /** An event id is unique over the whole log (EventStoreDB only checks ids within a stream's recent writes). */
  uniqueEventIds: boolean;
  /**
   * When set, one append is all-or-nothing only up to this many bytes (EventStoreDB: the server's `MaxAppendSize`).
   * A larger append is written in consecutive parts, each at the exact revision the previous part ended at: no
   * other writer's events land between them and a repeat is idempotent, but a failure part-way leaves the first
   * parts stored. Unset: every append is atomic whatever its size.
   */
  atomicAppendBytes?: number;
  /**
   * A group event nobody acked within `ackTimeoutMs` goes to another member when there is one. EventStoreDB: no,
   * its round-robin strategy offers it to the member that timed out first again (docs/eventstoredb.md); the event
   * still comes back after each timeout and is parked after `maxRetryCount`. Nothing in the workflow relies on it:
   * a slice whose lease expires is queued again as a new attempt by the fast processing agent.
   */
  redeliversToAnotherMember: boolean;
}

export interface EventStore {
  readonly kind: 'memory' | 'sqlite' | 'esdb' | 'postgres';
  readonly url: string;
  readonly capabilities: EventStoreCapabilities;

  appendToStream(stream: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Several appends, and optionally a checkpoint, in one transaction where the store allows it. */
  commit(appends: readonly StreamAppend[], checkpoint?: Checkpoint): Promise<CommitResult>;

  readStream(stream: string, options?: ReadStreamOptions): AsyncIterable<StoredEvent>;
  readAll(options?: ReadAllOptions): AsyncIterable<StoredEvent>;
  /** Position of the last event in the log, or undefined when it is empty. */
  headPosition(): Promise<Position | undefined>;

  subscribeToAll(options?: SubscribeToAllOptions): Subscription;
  subscribeToStream(stream: string, options?: SubscribeToStreamOptions): Subscription;

  subscribeToGroup(stream: string, group: string, options?: GroupOptions): GroupSubscription;
  listParked(stream: string, group: string): Promise<ParkedEvent[]>;
  /** Puts every parked event of the group back in front of its members. Returns how many. */
  replayParked(stream: string, group: string): Promise<number>;

  readonly checkpoints: CheckpointStore;

  /**
   * Whether operations are in flight (a network store: queries sent, not yet answered). A virtual clock does not
   * move on while the store is busy, since an answer may still wake a task. Absent: embedded stores answer
   * within a few turns of the event loop.
   */
  busy?(): boolean;
  /** Resolves once `busy()` is false (at once when it is): a virtual clock awaits it instead of polling `busy`. */
  settled?(): Promise<void>;

  close(): Promise<void>;
}

// ---- typed errors of the port --------------------------------------------------------------------

export {
  DamagedEventError,
  describeExpected,
  ExpectedVersionConflictError,
  StoreClosedError,
  StreamNotFoundError,
} from '../errors.js';
