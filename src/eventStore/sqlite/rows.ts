import type { StoredEvent } from '../eventStore.js';

/** An `events` row as better-sqlite3 returns it in raw mode: position, id, stream, revision, type, data, metadata, recorded_at. */
export type RawRow = [number, string, string, number, string, string, string, number];

export const rowToEvent = (r: RawRow): StoredEvent => ({
  id: r[1],
  type: r[4],
  data: JSON.parse(r[5]) as unknown,
  metadata: JSON.parse(r[6]) as unknown,
  streamName: r[2],
  revision: BigInt(r[3]),
  position: BigInt(r[0]),
  recordedAt: new Date(r[7]),
});
