/**
 * A paged list's total count is kept while the views stay as they are (counting a run's 105,000 slices is most of a
 * page's cost), and is counted again as soon as they change: by the projector folding more of the log, by another
 * connection (the projector's writer thread, another process), or by this connection's own writes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import { openViewsDb } from '../../src/projections/db.js';
import { list } from '../../src/projections/queries.js';
import { openViews } from '../../src/projections/views.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { memoryViews } from './helpers.js';

const page = { limit: 2, offset: 0 };

describe("a paged list's count", () => {
  it('follows the log: a second run folded in is counted', async () => {
    const store = await openEventStore('memory:');
    const first = await appendRunFixture(store);
    const views = await memoryViews(store);
    await views.ready();
    const all = list(views.db, 'slices', {}).count;
    expect(all).toBe(first.expected.slices_created);
    expect(list(views.db, 'slices', { page }).count).toBe(all);
    expect(list(views.db, 'slices', { page }).count).toBe(all);

    const second = await appendRunFixture(store, { runNumber: 100011 });
    await views.ready();
    expect(list(views.db, 'slices', { page }).count).toBe(all + second.expected.slices_created);
    expect(list(views.db, 'slices', { filters: { run_number: 100011 }, page }).count).toBe(
      second.expected.slices_created,
    );
    await views.close();
  });

  it("follows another connection's writes and this connection's own, and stays one snapshot with its page", async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store);
    const path = join(mkdtempSync(join(tmpdir(), 'swf-list-counts-')), 'views.db');
    const views = await openViews(store, { path });
    await views.ready();
    const completed = { filters: { run_number: run.runNumber, status: 'completed' }, page };
    const failed = { filters: { run_number: run.runNumber, status: 'failed' }, page };
    const before = list(views.db, 'slices', completed).count;
    const failedBefore = list(views.db, 'slices', failed).count;
    expect(before).toBe(run.expected.slices_completed);

    // another connection on the file (as the writer thread or another process): one slice fails
    const other = openViewsDb(path);
    other
      .prepare(
        `UPDATE tf_slices SET status = 'failed' WHERE id = (SELECT max(id) FROM tf_slices WHERE status = 'completed')`,
      )
      .run([]);
    expect(list(views.db, 'slices', completed).count).toBe(before - 1);
    expect(list(views.db, 'slices', failed).count).toBe(failedBefore + 1);

    // this connection's own write: the slice completes again
    views.db
      .prepare(
        `UPDATE tf_slices SET status = 'completed' WHERE id = (SELECT max(id) FROM tf_slices WHERE status = 'failed')`,
      )
      .run([]);
    expect(list(views.db, 'slices', completed).count).toBe(before);
    expect(list(views.db, 'slices', failed).count).toBe(failedBefore);

    // a write landing between two reads of one answer: the count belongs to the page's snapshot
    const counted = views.db.read(() => {
      const a = list(views.db, 'slices', completed);
      other.prepare(`DELETE FROM tf_slices WHERE status = 'completed'`).run([]);
      const b = list(views.db, 'slices', completed);
      return [a.count, b.count, b.rows.length];
    });
    expect(counted).toEqual([before, before, Math.min(before, page.limit)]);
    expect(list(views.db, 'slices', completed)).toEqual({ count: 0, rows: [] });
    other.close();
    await views.close();
  });
});
