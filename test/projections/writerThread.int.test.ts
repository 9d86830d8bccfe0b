/**
 * The bulk fold with the writer thread (a catch-up from empty views): the same rows as the plain fold, every
 * batch with its checkpoints in one transaction, a failure in the thread surfacing as an error with nothing
 * half-written, and another process writing meanwhile handled like any other.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { openViewsDb } from '../../src/projections/db.js';
import { Projector } from '../../src/projections/runner.js';
import { INDEX_DDL, indexNameOf, PROJECTION_NAMES } from '../../src/projections/schema.js';
import { openViews } from '../../src/projections/views.js';
import { Pipeline } from '../../src/projections/writer.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { checkpoints, dump } from './helpers.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'swf-writer-'));

/** The rows of a plain fold (in memory, no writer thread) of the log up to `until`. */
async function cleanFold(store: EventStore, until?: bigint): Promise<Record<string, unknown[]>> {
  const db = openViewsDb(':memory:');
  const p = await Projector.open(store, db);
  await p.catchUp(until !== undefined ? { until } : {});
  const rows = dump(db);
  db.close();
  return rows;
}

/** Two runs with incidents, and at the end a duplicate result for a slice long completed (read back from the rows). */
async function makeLog(dir: string): Promise<EventStore> {
  const store = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
  await appendRunFixture(store, { stfCount: 5 });
  await appendRunFixture(store, { runNumber: 100011, stfCount: 3 });
  let result: { stream: string; data: unknown; metadata: unknown } | undefined;
  for await (const e of store.readAll()) {
    if (e.type === 'slice_result' && result === undefined) {
      result = { stream: e.streamName, data: e.data, metadata: e.metadata };
    }
  }
  await store.appendToStream(result!.stream, [
    { type: 'slice_result', data: result!.data, metadata: result!.metadata },
  ]);
  return store;
}

const logger = () => {
  const lines: string[] = [];
  const log = (_o: unknown, m?: string) => void lines.push(m ?? '');
  return { lines, logger: { debug: log, info: log, warn: log, error: log } };
};

describe('the writer thread', () => {
  it('folds from empty views to the same rows as the plain fold, with the indexes, and goes on live', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const { lines, logger: log } = logger();
    const views = await openViews(store, { path: join(dir, 'v.db'), bulkEvents: 0, batchSize: 25, logger: log });
    const r = await views.ready();
    expect(lines).toContain('bulk fold with the writer thread');
    const head = Number(await store.headPosition());
    expect(r.events).toBe(head);
    expect(Object.values(checkpoints(views.db))).toEqual(PROJECTION_NAMES.map(() => head));
    expect(dump(views.db)).toEqual(await cleanFold(store));
    const indexes = views.db
      .prepare<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index'`)
      .all()
      .map((x) => x.name);
    for (const ddl of Object.values(INDEX_DDL).flat()) expect(indexes).toContain(indexNameOf(ddl));
    // the refused late result was counted on the completed slice it read back
    const refused = views.db.prepare<{ n: number }>(`SELECT count(*) AS n FROM tf_slices WHERE refusals > 0`).get();
    expect(refused?.n).toBeGreaterThan(0);
    await appendRunFixture(store, { runNumber: 100012, stfCount: 2 });
    await views.ready();
    expect(dump(views.db)).toEqual(await cleanFold(store));
    await views.close();
    await store.close();
  });

  it('a bulk fold that remembers too many finished slices goes on without the thread, to the same rows', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const { lines, logger: log } = logger();
    const db = openViewsDb(join(dir, 'v.db'));
    const projector = await Projector.open(store, db, { bulkEvents: 0, batchSize: 25, bulkSlices: 5, logger: log });
    const r = await projector.catchUp();
    expect(lines).toContain('the bulk fold is full; going on without the writer');
    expect(r.events).toBe(Number(await store.headPosition()));
    expect(dump(db)).toEqual(await cleanFold(store));
    db.close();
    await store.close();
  });

  it('a write failing in the thread surfaces as an error; the committed batches stand, and the fold resumes', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const db = openViewsDb(join(dir, 'v.db'));
    const projector = await Projector.open(store, db, { bulkEvents: 0, batchSize: 25 });
    db.exec(`CREATE TRIGGER boom BEFORE INSERT ON workflow_messages WHEN NEW.position > 150
      BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    await expect(projector.catchUp()).rejects.toThrow(/views writer thread failed: boom/);
    const stuck = checkpoints(db);
    const at = stuck.workflow!;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(151);
    expect(Object.values(stuck)).toEqual(PROJECTION_NAMES.map(() => at));
    // nothing of the failed batch (nor of the ones after it) was written
    expect(dump(db)).toEqual(await cleanFold(store, BigInt(at)));
    db.exec('DROP TRIGGER boom');
    await projector.catchUp();
    expect(dump(db)).toEqual(await cleanFold(store));
    db.close();
    await store.close();
  });

  it('another process writing the views meanwhile is a conflict: the fold goes on without the thread', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const { lines, logger: log } = logger();
    const a = await openViews(store, { path: join(dir, 'v.db'), bulkEvents: 0, batchSize: 10, logger: log });
    const other = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
    const b = await openViews(other, { path: join(dir, 'v.db'), batchSize: 7, writerThread: false });
    let started: Promise<unknown> | undefined;
    a.projector.onApplied(() => {
      started ??= b.ready();
    });
    await a.ready();
    await started;
    await Promise.all([a.ready(), b.ready()]);
    expect(lines).toContain('another process writes these views; going on without the writer');
    const clean = await cleanFold(store);
    expect(dump(a.db)).toEqual(clean);
    expect(dump(b.db)).toEqual(clean);
    await a.close();
    await b.close();
    await store.close();
    await other.close();
  });

  it('sends a string repeating the same parameter of the write before once, and writes every row as recorded', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const db = openViewsDb(join(dir, 'v.db'));
    await Projector.open(store, db);
    const pipeline = new Pipeline(db);
    const insert = pipeline.db.prepare(`INSERT INTO applog (position, app_name, instance_name, timestamp, level,
      levelname, message, module, lineno) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const other = pipeline.db.prepare(`INSERT INTO log_clock (id, latest) VALUES (1, ?)
      ON CONFLICT (id) DO UPDATE SET latest = excluded.latest`);
    const rows: [number, string, string, string, number, string, string, string | null, number | null][] = [
      [1, 'a', 'i', 't1', 20, 'INFO', 'same', 'mod', 7],
      [2, 'a', 'i', 't1', 20, 'INFO', 'same', null, null],
      [3, 'a', 'j', 't2', 30, 'WARNING', 'same', 'mod', 7],
      [4, 'b', 'j', 't2', 30, 'WARNING', '', '', 8],
      [5, 'b', 'j', 't2', 30, 'WARNING', '', '', 8],
    ];
    const names = PROJECTION_NAMES.map((n): [string, number] => [n, 0]);
    let at = 0;
    const commit = async (): Promise<void> => {
      await pipeline.commit(
        names.map(([n]): [string, number] => [n, at]),
        names.map(([n]): [string, number, string] => [n, at + 1, `e${at + 1}`]),
        BigInt(at + 1),
        1,
      );
      at++;
    };
    // a row, another statement between, and the last rows in a later batch: each repeats the one before
    insert.run(rows[0]);
    other.run(['x']);
    insert.run(rows[1]);
    insert.run(rows[2]);
    await commit();
    other.run(['x']);
    insert.run([BigInt(rows[3]![0]), ...rows[3]!.slice(1)] as (string | number | bigint | null)[]);
    insert.run(rows[4]);
    await commit();
    await pipeline.finish([]);
    const stored = openViewsDb(join(dir, 'v.db'));
    expect(
      stored
        .prepare(
          `SELECT position, app_name, instance_name, timestamp, level, levelname, message, module, lineno
           FROM applog ORDER BY position`,
        )
        .all()
        .map((r) => Object.values(r)),
    ).toEqual(rows);
    expect(stored.prepare<{ latest: string }>('SELECT latest FROM log_clock').get()?.latest).toBe('x');
    stored.close();
    db.close();
    await store.close();
  });

  it('writes a batch larger than the first one it had room for, numbers of every kind as given', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const db = openViewsDb(join(dir, 'v.db'));
    await Projector.open(store, db);
    const pipeline = new Pipeline(db);
    const insert = pipeline.db.prepare(`INSERT INTO applog (position, app_name, instance_name, timestamp, level,
      levelname, message, module, lineno) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // 12 000 rows of 9 parameters: some 130 000 slots, twice what a new pipeline has room for
    const rows = Array.from({ length: 12_000 }, (_, i) => [
      i + 1,
      `app-${i % 3}`,
      i % 2 === 0 ? 'same' : `inst-${i}`,
      `t${i}`,
      [0, -7, 2.5, 1e15, Number.MAX_SAFE_INTEGER][i % 5]!,
      i % 4 === 0 ? '' : 'INFO',
      `message ${i}`,
      i % 3 === 0 ? null : 'mod',
      i % 6 === 0 ? null : i * 3,
    ]);
    for (const r of rows) insert.run(r);
    const names = PROJECTION_NAMES.map((n): [string, number] => [n, 0]);
    await pipeline.commit(
      names,
      names.map(([n]): [string, number, string] => [n, 1, 'e1']),
      1n,
      1,
    );
    await pipeline.finish([]);
    const stored = openViewsDb(join(dir, 'v.db'));
    expect(
      stored
        .prepare(
          `SELECT position, app_name, instance_name, timestamp, level, levelname, message, module, lineno
           FROM applog ORDER BY position`,
        )
        .all()
        .map((r) => Object.values(r)),
    ).toEqual(rows);
    stored.close();
    db.close();
    await store.close();
  });

  it('a writer thread that dies fails the fold with a clear error; what it committed is whole', async () => {
    const dir = tmp();
    const store = await makeLog(dir);
    const db = openViewsDb(join(dir, 'v.db'));
    await Projector.open(store, db);
    const pipeline = new Pipeline(db, { maxInFlight: 100 });
    const insert = pipeline.db.prepare(`INSERT INTO applog (position, app_name, instance_name, timestamp, level,
      levelname, message) VALUES (?, 'a', 'i', 't', 20, 'INFO', 'm')`);
    const names = PROJECTION_NAMES.map((n): [string, number] => [n, 0]);
    for (let p = 1; p <= 3; p++) {
      insert.run([p]);
      const expect0 = names.map(([n]): [string, number] => [n, p - 1]);
      await pipeline.commit(
        expect0,
        names.map(([n]): [string, number, string] => [n, p, `e${p}`]),
        BigInt(p),
        1,
      );
    }
    await pipeline.drain();
    // a batch in flight when the thread dies is not written, and the next call says so
    for (let i = 0; i < 5000; i++) insert.run([100 + i]);
    await pipeline.commit(
      names.map(([n]): [string, number] => [n, 3]),
      names.map(([n]): [string, number, string] => [n, 4, 'e4']),
      4n,
      1,
    );
    await (pipeline as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(pipeline.drain()).rejects.toThrow(/views writer thread stopped|views writer thread failed/);
    const rows = db.prepare<{ n: number }>('SELECT count(*) AS n FROM applog').get()!.n;
    const at = checkpoints(db).logs!;
    expect([3, 4]).toContain(at);
    expect(rows).toBe(at === 3 ? 3 : 5003);
    await pipeline.close();
    db.close();
    await store.close();
  });
});
