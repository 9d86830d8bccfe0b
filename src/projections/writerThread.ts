/**
 * The views writer thread (started by `startWriterThread` in `db.ts`): a second connection that applies batches of
 * recorded writes, each with the checkpoints it moves in one IMMEDIATE transaction, while the main thread reads
 * the log and folds the next batch (see `writer.ts`).
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  SLOT,
  type SqlValue,
  type WriterBatch,
  type WriterClose,
  type WriterData,
  type WriterFinish,
  type WriterReply,
} from './db.js';

function serve(port: MessagePort, data: WriterData): void {
  const state = new Int32Array(data.state);
  const answer = (seq: number, status: number, reply: WriterReply): void => {
    if (status !== 0) Atomics.store(state, 1, status);
    if (seq >= 0) Atomics.store(state, 0, seq);
    Atomics.notify(state, 0);
    port.postMessage(reply);
  };
  const failure = (e: unknown): { message: string; code: string } => ({
    message: e instanceof Error ? e.message : String(e),
    code: typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : '',
  });
  let db: Database.Database | undefined;
  let opened: unknown;
  try {
    db = new Database(data.path);
    for (const p of data.pragmas) db.pragma(p);
    // The WAL is copied into the file every 64 MB (4 000 pages) as the thread goes, not all at the end.
    db.pragma('wal_autocheckpoint = 4000');
  } catch (e: unknown) {
    opened = e;
  }
  const statements: Database.Statement[] = [];
  const lastParams: SqlValue[][] = [];
  let checkpoints: Database.Statement | undefined;
  let move: Database.Statement | undefined;
  let stopped = false;
  const CONFLICT = new Error('the stored checkpoints are not the expected ones');
  port.on('message', (m: WriterBatch | WriterFinish | WriterClose) => {
    if (m.t === 'close') {
      db?.close();
      port.close();
      return;
    }
    if (m.t === 'batch') {
      if (stopped) return answer(m.seq, 0, { t: 'skipped', seq: m.seq });
      try {
        if (!db) throw opened;
        const conn = db;
        for (const sql of m.sqls) statements.push(conn.prepare(sql));
        checkpoints ??= conn.prepare('SELECT name, position FROM projection_checkpoints');
        move ??= conn.prepare('UPDATE projection_checkpoints SET position = ?, event_id = ? WHERE name = ?');
        const [read, write] = [checkpoints, move];
        conn
          .transaction(() => {
            const stored = new Map<string, number>();
            for (const r of read.all() as { name: string; position: number }[]) stored.set(r.name, r.position);
            for (const [name, position] of m.expect) if (stored.get(name) !== position) throw CONFLICT;
            const { tags, numbers, strings } = m;
            let next = 0;
            for (let i = 0; i < m.slots;) {
              const id = numbers[i]!;
              const n = numbers[i + 1]!;
              const last = lastParams[id];
              const params = new Array<SqlValue>(n);
              for (let k = 0, j = i + 2; k < n; k++, j++) {
                const tag = tags[j];
                params[k] =
                  tag === SLOT.NUMBER
                    ? numbers[j]!
                    : tag === SLOT.STRING
                      ? strings[next++]!
                      : tag === SLOT.NULL
                        ? null
                        : last![k]!;
              }
              lastParams[id] = params;
              statements[id]!.run(...params);
              i += 2 + n;
            }
            for (const [name, position, id] of m.set) write.run(position, id, name);
          })
          .immediate();
        answer(m.seq, 0, { t: 'ok', seq: m.seq });
      } catch (e: unknown) {
        stopped = true;
        if (e === CONFLICT) answer(m.seq, 1, { t: 'conflict', seq: m.seq });
        else answer(m.seq, 2, { t: 'error', seq: m.seq, ...failure(e) });
      }
      return;
    }
    try {
      if (!db) throw opened;
      if (stopped) throw new Error('the writer thread stopped after a failed batch');
      const conn = db;
      conn
        .transaction(() => {
          for (const sql of m.sql) conn.exec(sql);
        })
        .immediate();
      conn.pragma('wal_autocheckpoint = 1000');
      conn.pragma('wal_checkpoint(TRUNCATE)');
      conn.close();
      port.postMessage({ t: 'finished' } satisfies WriterReply);
    } catch (e: unknown) {
      db?.close();
      port.postMessage({ t: 'error', seq: -1, ...failure(e) } satisfies WriterReply);
    }
    port.close();
  });
}

if (parentPort === null) throw new Error('the views writer thread runs as a worker thread (see startWriterThread)');
serve(parentPort, workerData as WriterData);
