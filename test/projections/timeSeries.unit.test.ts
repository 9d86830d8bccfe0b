/** A run's time series: the RunState sampled at the end of each second of the workflow clock, from its own rows. */
import { describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import { NotFoundError } from '../../src/errors.js';
import { projectEvent, type ProjectedEvent } from '../../src/projections/projection.js';
import { LATENCY_EDGES_MS, latencyBin } from '../../src/projections/seriesBins.js';
import { runSeries } from '../../src/projections/timeSeries.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { memoryViews } from './helpers.js';

interface StateRow {
  slices_queued: number;
  slices_processing: number;
  slices_completed: number;
  slices_failed: number;
  slices_retried: number;
  stf_files: number;
  stf_samples_received: number;
  updated_at: string;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('the run time series', () => {
  it('holds, for each second, the RunState as the last event of that second left it', async () => {
    const store = await openEventStore('memory:');
    // 150 ms per STF-ish step of the fixture's clock: a run of several seconds
    const run = await appendRunFixture(store, { stfCount: 12, tfFilesPerStf: 3, slicesPerSample: 4, workers: 3 });
    const views = await memoryViews(store, 1);
    const head = (await store.headPosition())!;
    // the RunState after every event, keyed by the second of the event's time (the last one in a second wins)
    const events = new Map<bigint, ProjectedEvent>();
    for await (const e of store.readAll()) events.set(e.position, projectEvent(e));
    const bySecond = new Map<number, StateRow>();
    for (let p = 1n; p <= head; p++) {
      await views.projector.catchUp({ until: p });
      const s = views.db.prepare<StateRow>('SELECT * FROM run_states WHERE run_number = ?').get([run.runNumber]);
      if (s) bySecond.set(Math.floor(Date.parse(events.get(p)!.time) / 1000), s);
    }
    const seconds = [...bySecond.keys()];
    expect(seconds.length).toBeGreaterThan(2);
    /** The RunState at the end of second `t`: the last event's at or before it. */
    const at = (t: number): StateRow => bySecond.get(Math.max(...seconds.filter((x) => x <= t)))!;

    const series = runSeries(views.db, run.runNumber, { points: 10_000 });
    expect(series.step_seconds).toBe(1);
    expect(series.start).toBe(Math.min(...seconds));
    expect(series.t).toHaveLength(series.end - series.start + 1);
    let completed = 0;
    for (let i = 0; i < series.t.length; i++) {
      const s = at(series.t[i]!);
      completed += series.slices_completed[i]!;
      expect([
        series.slices_queued[i],
        series.slices_processing[i],
        completed,
        series.stf_files[i],
        series.samples[i],
      ]).toEqual([s.slices_queued, s.slices_processing, s.slices_completed, s.stf_files, s.stf_samples_received]);
    }
    expect(sum(series.slices_completed)).toBe(run.expected.slices_completed);
    expect(sum(series.slices_failed)).toBe(run.expected.slices_failed);
    expect(sum(series.slices_retried)).toBe(run.expected.slices_retried);
    expect(series.finished).toBe(true);
    expect(series.latency.count).toBe(run.expected.slices_completed);
    expect(series.marks.map((m) => m.phase)).toEqual(['imminent', 'physics', 'completed', 'finished']);
    await views.close();
  });

  it('cuts a long series into at most `points` intervals without losing a completed slice', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store, { stfCount: 12, tfFilesPerStf: 3, slicesPerSample: 4 });
    const views = await memoryViews(store);
    await views.ready();
    const full = runSeries(views.db, run.runNumber, { points: 10_000 });
    const two = runSeries(views.db, run.runNumber, { points: 2 });
    expect(two.t.length).toBeLessThanOrEqual(2);
    expect(two.step_seconds).toBe(Math.ceil(full.t.length / 2));
    expect(sum(two.slices_completed)).toBe(sum(full.slices_completed));
    expect(two.slices_queued.at(-1)).toBe(full.slices_queued.at(-1));
    expect(two.stf_files.at(-1)).toBe(12);
    await views.close();
  });

  it('gives a live run its series so far, and says it is not finished', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store, { finish: false, stfCount: 5 });
    const views = await memoryViews(store);
    await views.ready();
    const s = runSeries(views.db, run.runNumber);
    expect(s.finished).toBe(false);
    expect(s.phase).toBe('physics');
    expect(s.stf_files.at(-1)).toBe(5);
    expect(s.marks.map((m) => m.phase)).toEqual(['imminent', 'physics']);
    expect(() => runSeries(views.db, 999)).toThrow(NotFoundError);
    await views.close();
  });

  it('bins latencies in 1-2-5 steps, the last bin open-ended', () => {
    expect(latencyBin(0)).toBe(0);
    expect(latencyBin(-5)).toBe(0);
    expect(latencyBin(10)).toBe(1);
    expect(latencyBin(1_999)).toBe(7);
    expect(latencyBin(10 * 86_400_000)).toBe(LATENCY_EDGES_MS.length - 1);
    expect(latencyBin(90 * 60_000)).toBe(LATENCY_EDGES_MS.indexOf(3_600_000));
  });
});
