/**
 * Each event applies exactly once: the checkpoint commits with the rows, a batch that fails leaves nothing
 * behind, several projectors on one file share the work, and views of another log are rebuilt.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { openViewsDb, type ViewsDb } from '../../src/projections/db.js';
import { Projector } from '../../src/projections/runner.js';
import { defaultViewsPath, openViews } from '../../src/projections/views.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { checkpoints, dump } from './helpers.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'swf-views-'));

async function cleanFold(store: EventStore): Promise<Record<string, unknown[]>> {
  const views = await openViews(store, { path: ':memory:' });
  await views.ready();
  const rows = dump(views.db);
  await views.close();
  return rows;
}

/** A views database whose `n`-th write fails, as a crash in the middle of a batch would. */
function failingAt(db: ViewsDb, n: number): ViewsDb & { armed: boolean } {
  let writes = 0;
  const wrapped = {
    ...db,
    armed: true,
    prepare<Row>(sql: string) {
      const s = db.prepare<Row>(sql);
      if (!/^\s*(INSERT|UPDATE)/i.test(sql) || /projection_checkpoints|views_meta/.test(sql)) return s;
      return {
        ...s,
        run: (params?: Parameters<typeof s.run>[0]) => {
          if (wrapped.armed && ++writes === n) throw new Error('simulated crash');
          return s.run(params);
        },
      };
    },
  };
  return wrapped;
}

describe('exactly once', () => {
  it('a batch that fails midway commits nothing; the next attempt applies every event once', async () => {
    const dir = tmp();
    const store = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
    await appendRunFixture(store);
    const raw = openViewsDb(join(dir, 'views.db'));
    const db = failingAt(raw, 100);
    const projector = await Projector.open(store, db, { batchSize: 40 });
    await expect(projector.catchUp()).rejects.toThrow('simulated crash');
    const stuck = checkpoints(raw);
    const head = Number(await store.headPosition());
    expect(Object.values(stuck).every((p) => p > 0 && p < head)).toBe(true);
    // The crashed batch left no rows past the checkpoint: a restarted process goes on from it...
    db.armed = false;
    const again = await Projector.open(store, raw, { batchSize: 40 });
    await again.catchUp();
    const clean = await cleanFold(store);
    expect(dump(raw)).toEqual(clean);
    // ...and so does the same process, which dropped its in-memory state with the failed batch.
    await appendRunFixture(store, { runNumber: 100011, stfCount: 2 });
    const flaky = failingAt(raw, 60);
    const same = await Projector.open(store, flaky, { batchSize: 40 });
    await expect(same.catchUp()).rejects.toThrow('simulated crash');
    flaky.armed = false;
    await same.catchUp();
    expect(dump(raw)).toEqual(await cleanFold(store));
    raw.close();
    await store.close();
  });

  it('two projectors on one views file (two processes) share the work and agree with a clean fold', async () => {
    const dir = tmp();
    const url = `sqlite:${join(dir, 'swf.db')}`;
    const store = await openEventStore(url);
    const a = await openViews(store, { path: join(dir, 'v.db'), batchSize: 13 });
    const other = await openEventStore(url);
    const b = await openViews(other, { path: join(dir, 'v.db'), batchSize: 7 });
    a.follow();
    const appending = appendRunFixture(store, { commitSize: 3, stfCount: 4 });
    for (let i = 0; i < 20; i++) {
      await b.ready();
      await new Promise((r) => setTimeout(r, 5));
    }
    await appending;
    await appendRunFixture(other, { runNumber: 100011, stfCount: 2 });
    await Promise.all([a.ready(), b.ready()]);
    expect(dump(a.db)).toEqual(dump(b.db));
    expect(dump(a.db)).toEqual(await cleanFold(store));
    await a.close();
    await b.close();
    await store.close();
    await other.close();
  });

  it('a rebuild elsewhere makes a following projector start over from the stored checkpoint', async () => {
    const dir = tmp();
    const store = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
    await appendRunFixture(store, { stfCount: 2 });
    const live = await openViews(store, { path: join(dir, 'v.db'), batchSize: 11 });
    live.follow();
    await live.ready();
    const rebuilder = await openViews(store, { path: join(dir, 'v.db'), batchSize: 5 });
    const rebuilding = rebuilder.projector.rebuild();
    await appendRunFixture(store, { runNumber: 100011, stfCount: 2, commitSize: 4 });
    await rebuilding;
    await rebuilder.ready();
    await live.ready();
    expect(dump(live.db)).toEqual(await cleanFold(store));
    await live.close();
    await rebuilder.close();
    await store.close();
  });

  it('views built from another log are rebuilt when opened', async () => {
    const dir = tmp();
    const first = await openEventStore(`sqlite:${join(dir, 'a.db')}`);
    await appendRunFixture(first, { stfCount: 2 });
    const v1 = await openViews(first, { path: join(dir, 'shared.views.db') });
    await v1.ready();
    await v1.close();
    const second = await openEventStore('memory:');
    await appendRunFixture(second, { runNumber: 100020, executionId: 'other-swf-0001', stfCount: 1 });
    const v2 = await openViews(second, { path: join(dir, 'shared.views.db') });
    await v2.ready();
    expect(dump(v2.db)).toEqual(await cleanFold(second));
    await v2.close();
    await first.close();
    await second.close();
  });

  it('lives beside a SQLite store as <name>.views.db, else in ./swf-data/views.db', () => {
    expect(defaultViewsPath('sqlite:./swf-data/swf.db', '/work')).toBe('/work/swf-data/swf.views.db');
    expect(defaultViewsPath('sqlite:/data/run.sqlite', '/work')).toBe('/data/run.views.db');
    expect(defaultViewsPath('memory:', '/work')).toBe('/work/swf-data/views.db');
    expect(defaultViewsPath('esdb://localhost:2113?tls=false', '/work')).toBe('/work/swf-data/views.db');
  });
});
