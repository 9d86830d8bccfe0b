/** A slice's page data: its events in log order, read by the positions its row keeps (not by scanning the log). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore, ReadAllOptions, StoredEvent } from '../../src/eventStore/eventStore.js';
import { sliceHistory } from '../../src/projections/sliceHistory.js';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';
import { get, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;
let run: RunFixture;

beforeAll(async () => {
  m = await startTestMonitor();
  run = await appendRunFixture(m.store);
  await m.views.ready();
});
afterAll(async () => {
  await m.close();
});

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The positions of every event naming `slice`, found the slow way: the whole log. */
async function scanFor(store: EventStore, slice: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of store.readAll()) {
    const d = isRecord(e.data) ? e.data : {};
    const c = isRecord(d.content) ? d.content : {};
    if (d.tf_filename === slice || c.tf_filename === slice) out.push(Number(e.position));
  }
  return out;
}

interface HistoryEvent {
  position: number;
  type: string;
  time: string;
  worker: string | null;
  attempt: number | null;
  outcome: string | null;
}

describe('GET /api/tf-slices/{tf_filename}/events/', () => {
  it('gives a slice failed for good with every attempt: slice, start, result, in log order', async () => {
    const slice = run.incidents!.failedForGood;
    const r = await get(m.url, `/api/tf-slices/${encodeURIComponent(slice)}/events/`);
    expect(r.status).toBe(200);
    const body = r.json as { slice: { status: string; tf_filename: string }; events: HistoryEvent[] };
    expect(body.slice).toMatchObject({ tf_filename: slice, status: 'failed' });
    expect(body.events.map((e) => e.position)).toEqual(await scanFor(m.store, slice));
    const types = body.events.map((e) => e.type);
    expect(types.filter((t) => t === 'slice')).toHaveLength(4);
    expect(types.filter((t) => t === 'slice_result')).toHaveLength(4);
    expect(new Set(body.events.map((e) => e.attempt))).toEqual(new Set([1, 2, 3, 4]));
    const results = body.events.filter((e) => e.type === 'slice_result');
    expect(results.every((e) => e.outcome === 'failed' && run.workers.includes(e.worker ?? ''))).toBe(true);
    for (const e of body.events) expect(Date.parse(e.time)).not.toBeNaN();
  });

  it('shows an expired lease and the late result after it', async () => {
    const slice = run.incidents!.leaseExpired;
    const r = await get(m.url, `/api/tf-slices/${encodeURIComponent(slice)}/events/`);
    const events = (r.json as { events: HistoryEvent[] }).events;
    expect(events.map((e) => e.position)).toEqual(await scanFor(m.store, slice));
    const expired = events.findIndex((e) => e.type === 'SliceLeaseExpired');
    expect(expired).toBeGreaterThan(0);
    expect(events[expired]).toMatchObject({ outcome: 'expired', attempt: 1 });
  });

  it('reads only the slice’s own events from the log', async () => {
    let read = 0;
    const counting: EventStore = new Proxy(m.store, {
      get(target, prop, receiver) {
        if (prop !== 'readAll') return Reflect.get(target, prop, receiver) as unknown;
        return async function* (options?: ReadAllOptions): AsyncGenerator<StoredEvent> {
          for await (const e of target.readAll(options)) {
            read += 1;
            yield e;
          }
        };
      },
    });
    const h = await sliceHistory(m.views.db, counting, run.incidents!.retried);
    expect(h.events.length).toBeGreaterThanOrEqual(6);
    expect(read).toBe(h.events.length);
    expect(run.events).toBeGreaterThan(10 * read); // the log holds far more than the slice's events
  });

  it('answers 404 naming the slice for an unknown one, 400 for a query parameter', async () => {
    const r = await get(m.url, '/api/tf-slices/nope.tf/events/');
    expect(r.status).toBe(404);
    expect((r.json as { detail: string }).detail).toMatch(/no TF slice 'nope.tf'/);
    const q = await get(m.url, `/api/tf-slices/${encodeURIComponent(run.slices[0]!)}/events/?x=1`);
    expect(q.status).toBe(400);
  });
});
