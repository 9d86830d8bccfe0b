/**
 * A subscriber of the SQLite store learns of another process's commit even when a commit of its own process comes
 * first: the local commit reads `PRAGMA data_version`, and a move it did not cause is another connection's commit,
 * which wakes every waiter (not only those of the streams committed here). Before, the local commit took the new
 * data_version for its own and the poller never saw a change: `swf run`'s DAQ, waiting on its execution stream,
 * slept through `swf stop`'s StopRequested whenever one of its heartbeats committed first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '../../src/index.js';
import { getSQLiteEventStore } from '../../src/eventStore/sqlite/sqliteEventStore.js';

const open: EventStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe('SQLite store: a foreign commit followed by a local one', () => {
  it("wakes a subscriber of the foreign commit's stream, without waiting for the poller", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'swf-foreign-wake-')), 'swf.db');
    // This connection's poller would look only after an hour: only the local commit can tell of the foreign one.
    const here = getSQLiteEventStore({ path, pollIntervalMs: 3_600_000 });
    const other = getSQLiteEventStore({ path });
    open.push(here, other);
    await here.appendToStream('execution-x', [{ type: 'Started', data: {} }]);

    const sub = here.subscribeToStream('execution-x');
    const seen: StoredEvent[] = [];
    const reading = (async () => {
      for await (const e of sub) seen.push(e);
    })();
    await expect.poll(() => seen.length, { timeout: 10_000, interval: 10 }).toBe(1);

    await other.appendToStream('execution-x', [{ type: 'StopRequested', data: {} }]);
    await here.appendToStream('agent-daq', [{ type: 'agent_heartbeat', data: {} }]);

    await expect
      .poll(() => seen.map((e) => e.type), { timeout: 10_000, interval: 10 })
      .toEqual(['Started', 'StopRequested']);
    await sub.unsubscribe();
    await reading;
  });
});
