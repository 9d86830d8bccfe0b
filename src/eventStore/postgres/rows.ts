import type { StoredEvent } from '../eventStore.js';

/**
 * The columns every event query selects, in this order. int8 comes back as a string (pg's default: no precision
 * lost) and becomes a bigint here; `json` columns come back parsed.
 */
export const EVENT_COLUMNS =
  'position, id, stream, revision, type, data, metadata, (extract(epoch FROM recorded_at) * 1000)::int8';

/** An event row in array mode: position, id, stream, revision, type, data, metadata, recorded_at (ms). */
export type EventRow = [string, string, string, string, string, unknown, unknown, string];

export const rowToEvent = (r: EventRow): StoredEvent => ({
  id: r[1],
  type: r[4],
  data: r[5],
  metadata: r[6],
  streamName: r[2],
  revision: BigInt(r[3]),
  position: BigInt(r[0]),
  recordedAt: new Date(Number(r[7])),
});
