/** What a projection is to the runner, and the event as projections see it (parsed once per batch). */
import type { StoredEvent } from '../eventStore/eventStore.js';
import { describeError } from '../errors.js';
import { isBrokerRecorded, isDomainEventType, isMessageType, parseEvent, type ParsedEvent } from '../messages/index.js';
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

export interface Projection {
  readonly name: ProjectionName;
  /** Before a batch's events are applied (inside its transaction): load what they will need, in bulk. */
  prefetch?(events: readonly ProjectedEvent[]): void;
  /** Applies one event, inside the batch's transaction. */
  apply(event: ProjectedEvent): void;
  /** Writes what `apply` kept in memory, at the end of the batch, still inside the transaction. */
  flush(): void;
  /** Forgets in-memory state: the rows changed behind its back, or the transaction rolled back. */
  reset(): void;
  /** A bulk fold: whether it holds as much as it should in memory (the runner goes on with the plain fold). */
  full?(): boolean;
}

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

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** One object for every test: a regular expression literal is a new object each time it is evaluated. */
const RUN_ID = /^[0-9]{1,15}$/;
const isRunId = (v: unknown): v is string => typeof v === 'string' && RUN_ID.test(v);
const hasEnvelope = (d: Record<string, unknown>): boolean =>
  isText(d.namespace) && isText(d.sender) && isText(d.execution_id) && isRunId(d.run_id) && isText(d.created_at);

/**
 * The three types that make up most of a run's log (a slice, its result, a worker taking it), checked by hand for
 * exactly the fields the projections read: zod costs more per event than everything else the projection does with
 * them. Anything that does not pass goes through the full schema (which then says what is wrong).
 */
export function fastParse(e: StoredEvent): ParsedEvent | undefined {
  const d = e.data;
  if (!isRecord(d)) return undefined;
  switch (e.type) {
    case 'slice': {
      const c = d.content;
      if (d.msg_type !== 'slice' || !hasEnvelope(d) || !isRecord(c)) return undefined;
      const ok =
        isText(c.tf_filename) &&
        isText(c.fastmon_file) &&
        isText(c.filename) &&
        isText(c.req_id) &&
        isCount(c.slice_id) &&
        isCount(c.start) &&
        isCount(c.end) &&
        isCount(c.tf_count) &&
        c.tf_count === c.end - c.start + 1 &&
        isCount(c.attempt) &&
        c.attempt >= 1 &&
        c.run_id === d.run_id &&
        c.execution_id === d.execution_id;
      return ok ? ({ kind: 'message', type: 'slice', message: d } as unknown as ParsedEvent) : undefined;
    }
    case 'slice_result': {
      const c = d.content;
      if (d.msg_type !== 'slice_result' || !hasEnvelope(d) || !isRecord(c)) return undefined;
      const r = c.result;
      const ok =
        isText(c.tf_filename) &&
        isCount(c.slice_id) &&
        isCount(c.attempt) &&
        c.attempt >= 1 &&
        (c.state === 'done' || c.state === 'failed') &&
        (r === undefined ||
          r === null ||
          (isRecord(r) && (r.error === undefined || r.error === null || typeof r.error === 'string')));
      return ok ? ({ kind: 'message', type: 'slice_result', message: d } as unknown as ParsedEvent) : undefined;
    }
    case 'SliceProcessingStarted': {
      const ok =
        isText(d.tf_filename) &&
        isText(d.fastmon_file) &&
        isText(d.worker) &&
        isText(d.started_at) &&
        isText(d.lease_deadline) &&
        isCount(d.attempt) &&
        d.attempt >= 1 &&
        isCount(d.slice_id) &&
        isRunId(d.run_id) &&
        isText(d.execution_id) &&
        isText(d.namespace);
      return ok ? ({ kind: 'domain', type: 'SliceProcessingStarted', data: d } as unknown as ParsedEvent) : undefined;
    }
    default:
      return undefined;
  }
}

/** Parses a stored event for the projections. Unknown types pass with `parsed` undefined and no `invalid`. */
export function projectEvent(e: StoredEvent): ProjectedEvent {
  let parsed: ParsedEvent | undefined = fastParse(e);
  let invalid: string | undefined;
  if (!parsed && (isMessageType(e.type) || isDomainEventType(e.type))) {
    try {
      parsed = parseEvent(e);
    } catch (err: unknown) {
      invalid = describeError(err);
    }
  }
  // A recorded testbed body's times may be naive: the parsed message has them as UTC (messages/recorded.ts).
  const ownTime =
    parsed?.kind === 'message' && isBrokerRecorded(e.metadata) ? parsed.message.created_at : ownTimeOf(e.data);
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
export { isRecord };

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
