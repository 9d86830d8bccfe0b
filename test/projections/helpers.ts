/** Given events → then rows: small helpers for projection tests. */
import type { EventStore, NewEvent } from '../../src/eventStore/eventStore.js';
import type { ViewsDb } from '../../src/projections/db.js';
import { PROJECTION_TABLES } from '../../src/projections/schema.js';
import { openViews, type Views } from '../../src/projections/views.js';

export const memoryViews = (store: EventStore, batchSize?: number): Promise<Views> =>
  openViews(store, { path: ':memory:', ...(batchSize ? { batchSize } : {}) });

/** Every row of every read model, in key order: two folds agree iff their dumps are equal. */
export function dump(db: ViewsDb): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const tables of Object.values(PROJECTION_TABLES)) {
    for (const t of tables) out[t] = db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all();
  }
  return out;
}

export function checkpoints(db: ViewsDb): Record<string, number> {
  const rows = db
    .prepare<{ name: string; position: number }>('SELECT name, position FROM projection_checkpoints')
    .all();
  return Object.fromEntries(rows.map((r) => [r.name, r.position]));
}

/** Appends `events` to `stream`, one at a time (each its own position). */
export async function append(store: EventStore, stream: string, ...events: NewEvent[]): Promise<void> {
  for (const e of events) await store.appendToStream(stream, [e]);
}
