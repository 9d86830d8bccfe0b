/**
 * A slice's history: every event of the log that names it (its `slice` messages, the workers' starts, their
 * `slice_result`s, expired leases), oldest first. The slice's row keeps their positions, so a request reads only
 * those events, never the log around them.
 */
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import { NotFoundError } from '../errors.js';
import { readEventsAt } from './bodies.js';
import type { ViewsDb } from './db.js';
import { getSlice, type Row, sliceEventPositions } from './queries.js';

export interface SliceHistoryEvent {
  position: number;
  /** The message type (`slice`, `slice_result`) or the domain event's (`SliceProcessingStarted`, `SliceLeaseExpired`). */
  type: string;
  /** The event's own time (the workflow clock), else when the store recorded it. */
  time: string;
  recorded_at: string;
  stream: string;
  /** Who sent it (agent or worker). */
  sender: string | null;
  /** The worker it concerns: the one that took, processed or lost the slice. */
  worker: string | null;
  attempt: number | null;
  /** `slice_result`'s `done`/`failed`; `expired` for a lost lease. */
  outcome: string | null;
  /** A failure's reason, or the lease deadline of a start. */
  detail: string | null;
}

export interface SliceHistory {
  slice: Row;
  events: SliceHistoryEvent[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function historyEvent(e: StoredEvent): SliceHistoryEvent {
  const d = isRecord(e.data) ? e.data : {};
  const c = isRecord(d.content) ? d.content : {};
  const result = isRecord(c.result) ? c.result : {};
  const type = typeof d.msg_type === 'string' ? d.msg_type : e.type;
  const sender = str(d.sender);
  let worker: string | null = null;
  let outcome: string | null = null;
  let detail: string | null = null;
  switch (type) {
    case 'slice_result':
      worker = str(c.worker) ?? sender;
      outcome = str(c.state);
      detail = str(result.error) ?? str(c.error) ?? null;
      break;
    case 'SliceProcessingStarted':
      worker = str(d.worker);
      detail = str(d.lease_deadline) ? `lease until ${String(d.lease_deadline)}` : null;
      break;
    case 'SliceLeaseExpired':
      worker = str(d.worker);
      outcome = 'expired';
      detail = 'no result before the lease deadline';
      break;
    default:
      break;
  }
  return {
    position: Number(e.position),
    type,
    time: str(d.created_at) ?? str(d.started_at) ?? str(d.expired_at) ?? e.recordedAt.toISOString(),
    recorded_at: e.recordedAt.toISOString(),
    stream: e.streamName,
    sender,
    worker,
    attempt: num(c.attempt) ?? num(d.attempt),
    outcome,
    detail,
  };
}

/** The slice `tfFilename` and its events in log order; NotFoundError when there is no such slice. */
export async function sliceHistory(db: ViewsDb, store: EventStore, tfFilename: string): Promise<SliceHistory> {
  const slice = getSlice(db, { tf_filename: tfFilename });
  const positions = sliceEventPositions(db, tfFilename);
  if (positions === undefined) {
    // A slice the testbed's REST API wrote: it has a row but no events of its own in the log.
    if (slice.tf_filename === tfFilename) return { slice, events: [] };
    throw new NotFoundError(`no TF slice '${tfFilename}'`);
  }
  const events = await readEventsAt(store, positions);
  return { slice, events: events.map(historyEvent) };
}
