/** The chart endpoints over HTTP: a run's time series and latency histogram, live and finished; bad input. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';
import { get, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;
let finished: RunFixture;
let live: RunFixture;

beforeAll(async () => {
  m = await startTestMonitor();
  finished = await appendRunFixture(m.store, { stfCount: 6 });
  live = await appendRunFixture(m.store, { runNumber: 100011, finish: false, stfCount: 4 });
});
afterAll(async () => {
  await m.close();
});

interface Series {
  run_number: number;
  finished: boolean;
  t: number[];
  slices_completed: number[];
  slices_failed: number[];
  slices_queued: number[];
  stf_files: number[];
  latency: { count: number; counts: number[] };
  marks: { phase: string }[];
}
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('GET /api/runs/{run}/series/', () => {
  it('gives a finished run its slices per interval, levels, latency histogram and phase marks', async () => {
    const r = await get(m.url, `/api/runs/${finished.runNumber}/series/`);
    expect(r.status, r.text).toBe(200);
    const s = r.json as Series;
    expect(s).toMatchObject({ run_number: finished.runNumber, finished: true });
    expect(sum(s.slices_completed)).toBe(finished.expected.slices_completed);
    expect(sum(s.slices_failed)).toBe(finished.expected.slices_failed);
    expect(s.slices_queued.at(-1)).toBe(0);
    expect(s.stf_files.at(-1)).toBe(6);
    expect(s.latency.count).toBe(finished.expected.slices_completed);
    expect(s.marks.at(-1)?.phase).toBe('finished');
  });

  it('gives a live (unfinished) run what it has so far', async () => {
    const s = (await get(m.url, `/api/runs/${live.runNumber}/series/?points=50`)).json as Series;
    expect(s.finished).toBe(false);
    expect(s.t.length).toBeLessThanOrEqual(50);
    expect(s.stf_files.at(-1)).toBe(4);
    const h = (await get(m.url, `/api/runs/${live.runNumber}/latency/`)).json as { count: number; finished: boolean };
    expect(h).toMatchObject({ finished: false, count: sum(s.slices_completed) });
  });

  it('refuses a bad points value or parameter (400) and an unknown run (404), naming the problem', async () => {
    const bad = await get(m.url, `/api/runs/${finished.runNumber}/series/?points=0`);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ field: 'points', detail: expect.stringContaining('points must be') });
    const unknown = await get(m.url, `/api/runs/${finished.runNumber}/series/?step=5`);
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ detail: expect.stringContaining('unknown query parameter "step"') });
    const missing = await get(m.url, '/api/runs/42/series/');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ detail: 'no run 42' });
  });

  it('is listed in GET /api/', async () => {
    const index = (await get(m.url, '/api/')).json as { endpoints: string[] };
    expect(index.endpoints.some((e) => e.startsWith('/api/runs/{run_number}/series/'))).toBe(true);
  });
});
