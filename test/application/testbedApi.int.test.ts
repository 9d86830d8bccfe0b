/**
 * The write service's shortcuts keep its guarantees with two writers on one store (two monitors, as two processes
 * would be): a registration appends before it reads, a PATCH starts from the record this process wrote last, and
 * the expected revision of each append catches whatever the other wrote in between.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { TestbedApi } from '../../src/application/testbedApi/service.js';
import { WalSync } from '../../src/monitor/walSync.js';

let dir: string;
let store: EventStore;
let wal: WalSync;
let a: TestbedApi;
let b: TestbedApi;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swf-testbed-service-'));
  store = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
  wal = new WalSync(join(dir, 'swf.db-wal'));
  a = new TestbedApi({ store, namespace: 'torre1', durability: wal });
  b = new TestbedApi({ store, namespace: 'torre1' });
});
afterEach(async () => {
  await wal.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const SAMPLE = 'swf.100010.000001_tf_001.tf';
async function sample(): Promise<void> {
  expect((await a.registerRun({ run_number: 100010, start_time: '2026-12-07T15:21:34' })).status).toBe(201);
  expect((await a.registerStfFile({ run: 1, stf_filename: 'swf.100010.000001.stf' })).status).toBe(201);
  expect((await a.registerSample({ stf_file: 'swf.100010.000001.stf', tf_filename: SAMPLE })).status).toBe(201);
}
const slice = (id: number, extra: Record<string, unknown> = {}) => ({
  fastmon_file: SAMPLE,
  slice_id: id,
  tf_first: 0,
  tf_last: 1,
  tf_count: 2,
  run_number: 100010,
  ...extra,
});

describe('the testbed write service with two writers on one store', () => {
  it('a PATCH from one sees the PATCH the other made since its own last write', async () => {
    await sample();
    const created = await a.registerSlice(slice(0));
    const id = (created.body as { id: number }).id;
    expect((await b.updateSlice(id, { assigned_worker: 'worker-b' })).status).toBe(200);
    // a's last write of this slice is stale now: its append conflicts, it reads, and keeps b's change.
    const done = await a.updateSlice(id, { status: 'done' });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id, status: 'done', assigned_worker: 'worker-b' });
    const again = await b.updateSlice(id, { retries: 1 });
    expect(again.body).toMatchObject({ status: 'done', assigned_worker: 'worker-b', retries: 1 });
    expect(wal.syncs).toBeGreaterThan(0);
  });

  it('a retry through the other writer of a registration gets the same record and writes nothing', async () => {
    await sample();
    const first = await a.registerSlice(slice(1));
    const head = await store.headPosition();
    const retry = await b.registerSlice(slice(1));
    expect(retry).toEqual(first);
    await expect(a.registerSlice(slice(1, { tf_count: 3 }))).rejects.toMatchObject({
      errors: { non_field_errors: ['The fields fastmon_file, slice_id must make a unique set.'] },
    });
    expect(await store.headPosition()).toBe(head);
  });

  it('refuses a slice of an unknown sample, and takes it once the other writer registered the sample', async () => {
    await sample();
    const other = 'swf.100010.000001_tf_002.tf';
    await expect(a.registerSlice({ ...slice(0), fastmon_file: other })).rejects.toMatchObject({
      errors: { fastmon_file: [`Object with tf_filename=${other} does not exist.`] },
    });
    expect((await b.registerSample({ stf_file: 'swf.100010.000001.stf', tf_filename: other })).status).toBe(201);
    expect((await a.registerSlice({ ...slice(0), fastmon_file: other })).status).toBe(201);
  });
});

describe('the testbed write service and durability', () => {
  /** A durability whose fsync ends only when the test says so. */
  class HeldDurability {
    commits = 0;
    private durable = 0;
    private waiting: { upTo: number; resolve: () => void }[] = [];
    ready(): Promise<void> {
      return Promise.resolve();
    }
    committed(): void {
      this.commits++;
    }
    settle(): Promise<void> {
      const upTo = this.commits;
      if (upTo <= this.durable) return Promise.resolve();
      return new Promise((resolve) => this.waiting.push({ upTo, resolve }));
    }
    /** The fsync ends: every commit so far is durable. */
    sync(): void {
      this.durable = this.commits;
      for (const w of this.waiting.splice(0)) w.resolve();
    }
  }
  const answered = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false;
    void p.then(() => (done = true));
    // the store commits on the next turn of the event loop; give it a few
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    return done;
  };

  it('answers a write only once it is durable, and a retry finding it only once it is durable too', async () => {
    const held = new HeldDurability();
    const api = new TestbedApi({ store, namespace: 'torre1', durability: held });
    const run = api.registerRun({ run_number: 100020, start_time: '2026-12-07T15:21:34' });
    expect(await answered(run)).toBe(false);
    expect(held.commits).toBe(1);
    held.sync();
    expect((await run).status).toBe(201);

    const stf = api.registerStfFile({ run: 1, stf_filename: 'swf.100020.000001.stf' });
    expect(await answered(stf)).toBe(false);
    // The same POST again (a client retrying) finds the record, but it is not on disk yet: it waits as well.
    const retry = api.registerStfFile({ run: 1, stf_filename: 'swf.100020.000001.stf' });
    expect(await answered(retry)).toBe(false);
    held.sync();
    const [a, b] = await Promise.all([stf, retry]);
    expect(b).toEqual(a);

    const log = api.appendLog({
      app_name: 'a',
      instance_name: 'agent-1',
      timestamp: '2026-12-07T15:21:15.171767',
      level: 20,
      levelname: 'INFO',
      message: 'hello',
      module: 'm',
      funcname: 'f',
      lineno: 1,
      process: 1,
      thread: 1,
    });
    expect(await answered(log)).toBe(false);
    held.sync();
    expect((await log).status).toBe(201);
  });
});
