import { DamagedEventError } from '../../errors.js';
import type { StoredEvent } from '../eventStore.js';

export { DamagedEventError };

function parseColumn(r: RawRow, column: 5 | 6): unknown {
  try {
    return JSON.parse(r[column]) as unknown;
  } catch (e: unknown) {
    throw new DamagedEventError({
      position: BigInt(r[0]),
      id: r[1],
      stream: r[2],
      reason: `its ${column === 5 ? 'data' : 'metadata'} is not valid JSON (${e instanceof Error ? e.message : String(e)})`,
    });
  }
}

/** An `events` row as better-sqlite3 returns it in raw mode: position, id, stream, revision, type, data, metadata, recorded_at. */
export type RawRow = [number, string, string, number, string, string, string, number];

export const rowToEvent = (r: RawRow): StoredEvent => ({
  id: r[1],
  type: r[4],
  data: parseColumn(r, 5),
  metadata: parseColumn(r, 6),
  streamName: r[2],
  revision: BigInt(r[3]),
  position: BigInt(r[0]),
  recordedAt: new Date(r[7]),
});
