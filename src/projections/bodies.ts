/**
 * Message bodies, read from the log by position. The message store keeps each message's envelope and position;
 * the body is already in the log, so readers fetch it from there instead of the views holding a second copy.
 */
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import type { Row } from './queries.js';

/** Point reads up to this many positions (or when they are sparse); one sequential read over the range otherwise. */
const POINT_READS = 32;

/** The stored events' data at `positions`. */
export async function readBodies(store: EventStore, positions: readonly number[]): Promise<Map<number, unknown>> {
  const out = new Map<number, unknown>();
  const sorted = [...new Set(positions)].sort((a, b) => a - b);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first === undefined || last === undefined) return out;
  if (sorted.length <= POINT_READS || last - first > sorted.length * 64) {
    for (const p of sorted) {
      for await (const e of store.readAll({ from: BigInt(p), maxCount: 1 })) {
        if (Number(e.position) === p) out.set(p, e.data);
      }
    }
    return out;
  }
  const want = new Set(sorted);
  for await (const e of store.readAll({ from: BigInt(first) })) {
    const p = Number(e.position);
    if (p > last) break;
    if (want.has(p)) out.set(p, e.data);
  }
  return out;
}

/** Message rows with their bodies as `message_content` (the testbed's field). */
export async function withBodies(store: EventStore, rows: readonly Row[]): Promise<Row[]> {
  const bodies = await readBodies(
    store,
    rows.map((r) => r.position as number),
  );
  return rows.map((r) => ({ ...r, message_content: bodies.get(r.position as number) ?? null }));
}

/** The stored events at `positions` (point reads, in log order): a slice's history, from its row's positions. */
export async function readEventsAt(store: EventStore, positions: readonly number[]): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (const p of [...new Set(positions)].sort((a, b) => a - b)) {
    for await (const e of store.readAll({ from: BigInt(p), maxCount: 1 })) {
      if (Number(e.position) === p) out.push(e);
    }
  }
  return out;
}
