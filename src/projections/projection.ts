/** What a projection is to the runner, and the event as projections see it (parsed once per batch). */
import type { StoredEvent } from '../eventStore/eventStore.js';
import { describeError } from '../errors.js';
import { fastParse } from '../messages/fastParse.js';
import {
  type DomainEventType,
  isBrokerRecorded,
  isDomainEventType,
  isMessageType,
  type MessageType,
  parseEvent,
  type ParsedEvent,
} from '../messages/index.js';
import type { SqlValue } from './db.js';
import type { ProjectionName } from './schema.js';

export interface ProjectedEvent {
  position: bigint;
  id: string;
  type: string;
  stream: string;
  data: unknown;
  metadata: Record<string, unknown>;
  recordedAt: Date;
  /** The validated event, when its type is ours and it is valid. */
  parsed: ParsedEvent | undefined;
  /** Why a known type failed validation (the projections skip it; the workflow projection records it). */
  invalid: string | undefined;
  /** The event's own time (workflow clock, ISO UTC), or when the store recorded it. */
  time: string;
  /** The event's own time only (undefined when it carries none): what the log's clock is made of. */
  ownTime: string | undefined;
}

/** One row write a projection asks for: the runner runs it now, or records it for the writer thread. */
export interface Write {
  readonly sql: string;
  readonly params: SqlValue[];
}

/** What `evolve` returns when an event writes nothing (shared: no array per event). */
export const NO_WRITES: readonly Write[] = Object.freeze([]);

/**
 * State a projection keeps between events (a run's machine snapshot, a slice's), keyed, with the rows it lives
 * in. The projection says how a row becomes a value and a value a write; the runner owns the rest: loading values
 * from the rows (one by one, or a batch's worth at once), caching them, writing the changed ones at the end of a
 * batch, letting go of them, and knowing when there is nothing to read (a fold from empty views).
 */
export interface StateSpec<K extends string | number, V> {
  /** The table the values are read from, its key column, and the columns to select. */
  readonly table: string;
  readonly key: string;
  readonly columns?: string;
  /**
   * The table's INTEGER PRIMARY KEY, when the runner numbers the rows: a new value's row gets the next number, in
   * the order the rows are first written, and `toWrite` is told the number and whether the row exists, so it can
   * write a plain INSERT or an UPDATE by row id (cheaper than an upsert through the key's index).
   */
  readonly rowid?: string;
  fromRow(row: Record<string, unknown>): V;
  /** The write that stores a changed value (none: the value is only ever read from rows others write). */
  toWrite?(key: K, value: V, row: StoredRow): Write;
  /** A value that takes no more events: written, then let go of. */
  isFinal?(value: V): boolean;
  /** The key an event will look up: the runner loads a batch's keys in one query before folding it. */
  keyOf?(event: ProjectedEvent): K | undefined;
}

/** A value's row, for a state whose rows the runner numbers (`rowid`); id 0 otherwise. */
export interface StoredRow {
  readonly id: number;
  /** Whether the row exists (else the write inserts it). */
  readonly stored: boolean;
}

/** A projection's view of one kind of its state, as the runner gives it. */
export interface Keyed<K extends string | number, V> {
  /** The value of `key`: from memory, else from the rows; undefined when it has none. */
  get(key: K): V | undefined;
  /** Records `value` as changed: it is written at the end of the batch. */
  put(key: K, value: V): void;
  /** Keeps `value` in memory without writing it (its row is written by an event's own write). */
  keep(key: K, value: V): void;
}

export type StateSpecs<S> = { readonly [N in keyof S]: S[N] extends Keyed<infer K, infer V> ? StateSpec<K, V> : never };

/**
 * A read model: which rows to write for an event (Emmett's `SQLiteRawSQLProjection.evolve`), and the state it
 * needs between events. Batching, the writer thread, prefetching, caching, eviction and index building are the
 * runner's; a projection never sees which of them are at work.
 */
export interface Projection<S = Record<string, never>> {
  readonly name: ProjectionName;
  readonly state: StateSpecs<S>;
  /** The writes for one event, in order; `state` holds what earlier events left. */
  evolve(event: ProjectedEvent, state: S): readonly Write[];
}

/**
 * One part of a composed projection: its fold, and the events it reads. It is called for exactly those (a parsed
 * message of a listed `msg_type`, a parsed domain event of a listed type, and, with `invalid`, an event of one of our
 * types that failed validation), so every other part need not look at an event to learn it is not theirs.
 */
export interface ProjectionPart<S> {
  readonly evolve: (event: ProjectedEvent, state: S) => readonly Write[];
  readonly messages?: readonly MessageType[];
  readonly domainEvents?: readonly DomainEventType[];
  readonly invalid?: boolean;
}

/**
 * A projection built of parts that each build some of its tables, folding one shared state (one checkpoint). The
 * parts an event goes to are chosen once per event type (in the parts' order), not asked of every part per event.
 */
export function composeProjection<S>(
  name: ProjectionName,
  state: StateSpecs<S>,
  parts: readonly ProjectionPart<S>[],
): Projection<S> {
  type Evolve = ProjectionPart<S>['evolve'];
  const byMessage = new Map<string, readonly Evolve[]>();
  const byDomain = new Map<string, readonly Evolve[]>();
  const forInvalid: readonly Evolve[] = parts.filter((p) => p.invalid === true).map((p) => p.evolve);
  const partsFor = (
    cache: Map<string, readonly Evolve[]>,
    type: string,
    listed: (p: ProjectionPart<S>) => readonly string[] | undefined,
  ): readonly Evolve[] => {
    let out = cache.get(type);
    if (out === undefined) {
      out = parts.filter((p) => listed(p)?.includes(type) === true).map((p) => p.evolve);
      cache.set(type, out);
    }
    return out;
  };
  return {
    name,
    state,
    evolve(event, s) {
      const p = event.parsed;
      const chosen =
        p === undefined
          ? event.invalid === undefined
            ? NO_PARTS
            : forInvalid
          : p.kind === 'message'
            ? partsFor(byMessage, p.message.msg_type, (x) => x.messages)
            : partsFor(byDomain, p.type, (x) => x.domainEvents);
      let out: Write[] | undefined;
      let only: readonly Write[] = NO_WRITES;
      for (let i = 0; i < chosen.length; i++) {
        const w = chosen[i]!(event, s);
        if (w.length === 0) continue;
        if (only.length === 0) only = w;
        else (out ??= [...only]).push(...w);
      }
      return out ?? only;
    },
  };
}

const NO_PARTS: readonly never[] = Object.freeze([]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const TIME_FIELDS = ['created_at', 'started_at', 'expired_at', 'start_time', 'end_time', 'finished_at', 'requested_at'];

/** The time an event carries (the workflow clock's), if any. */
export function ownTimeOf(data: unknown): string | undefined {
  if (isRecord(data)) {
    for (const f of TIME_FIELDS) {
      const v = data[f];
      if (typeof v === 'string' && v.length > 0) return v;
    }
  }
  return undefined;
}

/** One object for every test: a regular expression literal is a new object each time it is evaluated. */
const RUN_ID = /^[0-9]{1,15}$/;

/** Parses a stored event for the projections. Unknown types pass with `parsed` undefined and no `invalid`. */
export function projectEvent(e: StoredEvent): ProjectedEvent {
  // A frame recorded from the real testbed is read with the testbed profile (parseEvent), never the fast path.
  const recorded = isBrokerRecorded(e.metadata);
  let parsed: ParsedEvent | undefined = recorded ? undefined : fastParse(e);
  let invalid: string | undefined;
  if (!parsed && (isMessageType(e.type) || isDomainEventType(e.type))) {
    try {
      parsed = parseEvent(e);
    } catch (err: unknown) {
      invalid = describeError(err);
    }
  }
  // A recorded testbed body's times may be naive: the parsed message has them as UTC (messages/recorded.ts).
  const ownTime = parsed?.kind === 'message' && recorded ? parsed.message.created_at : ownTimeOf(e.data);
  return {
    position: e.position,
    id: e.id,
    type: e.type,
    stream: e.streamName,
    data: e.data,
    metadata: isRecord(e.metadata) ? e.metadata : {},
    recordedAt: e.recordedAt,
    parsed,
    invalid,
    time: ownTime ?? e.recordedAt.toISOString(),
    ownTime,
  };
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const int = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
export { fastParse, isRecord };

/** The run number an event is about (body `run_id`, content `run_id`, metadata `runNumber`). */
export function runNumberOf(e: ProjectedEvent): number | undefined {
  const d = isRecord(e.data) ? e.data : {};
  const c = isRecord(d.content) ? d.content : {};
  const raw = d.run_id ?? c.run_id ?? d.run_number ?? e.metadata.runNumber;
  const n = typeof raw === 'string' && RUN_ID.test(raw) ? Number(raw) : int(raw);
  return n !== undefined && n >= 0 ? n : undefined;
}

/** The execution an event belongs to (body, content, or metadata). */
export function executionIdOf(e: ProjectedEvent): string | undefined {
  const d = isRecord(e.data) ? e.data : {};
  const c = isRecord(d.content) ? d.content : {};
  return str(d.execution_id) ?? str(c.execution_id) ?? str(e.metadata.executionId);
}

export function namespaceOf(e: ProjectedEvent): string | undefined {
  const d = isRecord(e.data) ? e.data : {};
  return str(d.namespace) ?? str(e.metadata.namespace);
}
