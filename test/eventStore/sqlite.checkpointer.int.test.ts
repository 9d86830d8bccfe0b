import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function fill(
  durable: boolean,
): Promise<{ dbFile: string; before: number; store: Awaited<ReturnType<typeof openEventStore>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'swf-checkpointer-'));
  dirs.push(dir);
  const dbFile = join(dir, 'events.db');
  const store = await openEventStore(`sqlite:${dbFile}`, { durable });
  const before = statSync(dbFile).size;
  const data = { payload: 'x'.repeat(200) };
  for (let b = 0; b < 50; b++) {
    await store.appendToStream(
      `s-${b}`,
      Array.from({ length: 100 }, (_, i) => ({ type: 'Filled', data: { ...data, i } })),
      { expectedRevision: 'no_stream' },
    );
  }
  return { dbFile, before, store };
}

describe('SQLite WAL checkpoints', () => {
  it('a durable store copies the WAL into the database file from its own thread, not only at the threshold', async () => {
    // 5,000 events stay far below SQLite's automatic checkpoint (10,000 pages): only the checkpoint thread copies
    // them into the database file while the store is open.
    const { dbFile, before, store } = await fill(true);
    try {
      await expect.poll(() => statSync(dbFile).size, { timeout: 20_000, interval: 50 }).toBeGreaterThan(before);
      const n = await store.appendToStream('after', [{ type: 'Filled', data: {} }], { expectedRevision: 'no_stream' });
      expect(n.position).toBe(5001n);
    } finally {
      await store.close();
    }
    // Closed cleanly: the file reopens with every event.
    const again = await openEventStore(`sqlite:${dbFile}`);
    try {
      expect(await again.headPosition()).toBe(5001n);
    } finally {
      await again.close();
    }
  });

  it('a store that is not durable leaves its checkpoints to SQLite (the file does not grow before the threshold)', async () => {
    const { dbFile, before, store } = await fill(false);
    try {
      expect(statSync(dbFile).size).toBe(before);
    } finally {
      await store.close();
    }
  });
});
