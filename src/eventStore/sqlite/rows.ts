import { StoreCorruptError } from '../../errors.js';
import type { DamagedEvent, StoredEvent } from '../eventStore.js';

/** An event row whose JSON does not parse (the file's bytes were changed): names the event; the store adds its path. */
export class DamagedEventError extends StoreCorruptError {
  constructor(
    readonly damaged: DamagedEvent,
    readonly store?: string,
  ) {
    super(
      `${store ? `the store ${store} holds a damaged event` : 'a damaged event'} at position ${damaged.position} ` +
        `(id ${damaged.id}, stream ${damaged.stream}): ${damaged.reason}; ` +
        '`swf events read --skip-damaged` and `swf export --skip-damaged` read past it',
    );
  }
}

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
