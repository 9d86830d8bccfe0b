/** What a projection is to the runner, and the event as projections see it (parsed once per batch). */
import type { StoredEvent } from '../eventStore/eventStore.js';
import { describeError } from '../errors.js';
import { isDomainEventType, isMessageType, parseEvent, type ParsedEvent } from '../messages/index.js';
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
  /** Applies one event, inside the batch's transaction. */
  apply(event: ProjectedEvent): void;
  /** Writes what `apply` kept in memory, at the end of the batch, still inside the transaction. */
  flush(): void;
  /** Forgets in-memory state: the rows changed behind its back, or the transaction rolled back. */
  reset(): void;
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

/** Parses a stored event for the projections. Unknown types pass with `parsed` undefined and no `invalid`. */
export function projectEvent(e: StoredEvent): ProjectedEvent {
  let parsed: ParsedEvent | undefined;
  let invalid: string | undefined;
  if (isMessageType(e.type) || isDomainEventType(e.type)) {
    try {
      parsed = parseEvent(e);
    } catch (err: unknown) {
      invalid = describeError(err);
    }
  }
  const ownTime = ownTimeOf(e.data);
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
  const n = typeof raw === 'string' && /^[0-9]{1,15}$/.test(raw) ? Number(raw) : int(raw);
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
