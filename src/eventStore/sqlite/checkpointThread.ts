/**
 * The checkpoint thread of a durable SQLite store (started by `startCheckpointer` in `checkpointer.ts`): a second
 * connection that copies the WAL into the database file (`PRAGMA wal_checkpoint(PASSIVE)`) when asked, so that a
 * commit never waits for a checkpoint's writes and its fsync of the database file. PASSIVE takes no lock a writer
 * needs: appends go on into the WAL while it runs, and SQLite starts the WAL over once a checkpoint has copied it all.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointerData, CheckpointerReply } from './checkpointer.js';

const port = parentPort!;
const data = workerData as CheckpointerData;
let db: Database.Database | undefined;
try {
  db = new Database(data.path, { timeout: data.busyTimeoutMs });
  // FULL: the WAL is synced before it is copied, and the database file after (as the writer's own checkpoint did).
  db.pragma('synchronous = FULL');
  db.pragma('wal_autocheckpoint = 0');
} catch (e: unknown) {
  port.postMessage({ error: e instanceof Error ? e.message : String(e) } satisfies CheckpointerReply);
}
port.on('message', (m: 'checkpoint' | 'close') => {
  if (m === 'close') {
    try {
      db?.close();
    } finally {
      port.close();
    }
    return;
  }
  if (!db) return;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    port.postMessage({ log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 } satisfies CheckpointerReply);
  } catch (e: unknown) {
    port.postMessage({ error: e instanceof Error ? e.message : String(e) } satisfies CheckpointerReply);
  }
});
