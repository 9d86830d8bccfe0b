/**
 * A `swf run` killed with SIGKILL is carried on to its end by `swf run --resume` (issue #12, point 2): at random
 * points of a single-process run, the run is killed, then resumed; every slice ends completed or failed, nothing
 * is doubled, and the figures equal those of an uninterrupted run with the same seed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { swfIn } from '../helpers/cli.js';
import { runAndKill } from '../helpers/crash.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);

// Payload failures, retries and final failures: a resumed worker takes back the slice its dead namesake held (same
// attempt), so even the attempts match an uninterrupted run's.
const SET = [
  'fast_processing.stf_count=6',
  'fast_processing.slices_per_sample=6',
  'fast_processing.target_worker_count=8',
  'fast_processing.worker_failure_rate=0.4',
  'fast_processing.seed=7',
];

interface Figures {
  runFinished: number;
  counts: { stf_files: number; slices_completed: number; slices_failed: number };
  /** Each message's identity (file or slice name) → how many times it was sent. */
  sent: Record<string, Record<string, number>>;
  /** slice name → attempts sent; (slice, attempt) pairs sent more than once. */
  doubledAttempts: string[];
  executionStatus: string | undefined;
}

async function figures(url: string, run: number): Promise<Figures> {
  const store: EventStore = await openEventStore(url);
  const f: Figures = {
    runFinished: 0,
    counts: { stf_files: 0, slices_completed: 0, slices_failed: 0 },
    sent: { stf_gen: {}, stf_ready: {}, tf_file_registered: {}, slice: {} },
    doubledAttempts: [],
    executionStatus: undefined,
  };
  const attempts = new Set<string>();
  const count = (type: string, key: string): void => {
    const t = f.sent[type]!;
    t[key] = (t[key] ?? 0) + 1;
  };
  try {
    for await (const e of store.readAll()) {
      const d = e.data as Record<string, unknown>;
      const m = e.metadata as { runNumber?: unknown } | null;
      if (d.run_id !== String(run) && m?.runNumber !== run) continue;
      switch (e.type) {
        case 'stf_gen':
        case 'stf_ready':
          count(e.type, String(d.filename));
          break;
        case 'tf_file_registered':
          count(e.type, String(d.tf_filename));
          break;
        case 'slice': {
          const c = d.content as { tf_filename: string; attempt: number };
          count('slice', `${c.tf_filename}#${c.attempt}`);
          const key = `${c.tf_filename}#${c.attempt}`;
          if (attempts.has(key)) f.doubledAttempts.push(key);
          attempts.add(key);
          break;
        }
        case 'RunFinished':
          f.runFinished++;
          f.counts = {
            stf_files: Number(d.stf_files),
            slices_completed: Number(d.slices_completed),
            slices_failed: Number(d.slices_failed),
          };
          break;
        case 'WorkflowExecutionFinished':
          f.executionStatus = String(d.status);
          break;
      }
    }
  } finally {
    await store.close();
  }
  return f;
}

let baseline: Figures;
let baselineEvents: bigint;
let baselineRun: number;

beforeAll(async () => {
  const url = `sqlite:${join(dir, 'baseline.db')}`;
  const summary = await runInto(url, SET);
  baselineRun = summary.run_number;
  baseline = await figures(url, baselineRun);
  const store = await openEventStore(url);
  baselineEvents = (await store.headPosition()) ?? 0n;
  await store.close();
}, 60_000);

describe('swf run --resume after SIGKILL', () => {
  // Kill points spread over the run (fractions of an uninterrupted run's events), each shifted at random.
  const trials = [0.05, 0.2, 0.4, 0.6, 0.8, 0.95].map((f, i) => ({ i, f: f + (Math.random() - 0.5) * 0.08 }));

  it.each(trials)('kill point $i (about $f of the run): resumed to the same end', async ({ i, f }) => {
    expect(baseline.runFinished).toBe(1);
    expect(baseline.counts.slices_failed).toBeGreaterThan(0);
    const url = `sqlite:${join(dir, `trial-${i}.db`)}`;
    const killAt = BigInt(Math.max(3, Math.floor(Number(baselineEvents) * Math.min(0.97, Math.max(0.01, f)))));
    // A run that outpaced the kill is tried again on a fresh store, with an earlier kill point.
    let outcome = await runAndKill(url, SET, killAt);
    for (let retry = 1; outcome === 'finished' && retry <= 3; retry++) {
      const again = `sqlite:${join(dir, `trial-${i}-${retry}.db`)}`;
      outcome = await runAndKill(again, SET, (killAt * 2n) / 3n);
      if (outcome === 'killed') return await finishAndCompare(again);
    }
    expect(outcome, 'the run finished before every kill point').toBe('killed');
    await finishAndCompare(url);
  });

  async function finishAndCompare(url: string): Promise<void> {
    const killed = await figures(url, baselineRun);
    expect(killed.executionStatus).toBeUndefined();
    const r = await swf('run', '--resume', String(baselineRun), '--json', '--store', url);
    expect(r.code, r.err).toBe(0);
    const after = await figures(url, baselineRun);
    expect(after.runFinished).toBe(1);
    expect(after.executionStatus).toBe('completed');
    expect(after.counts).toEqual(baseline.counts);
    const slices = new Set(Object.keys(baseline.sent.slice!).map((k) => k.replace(/#\d+$/, '')));
    expect(after.counts.slices_completed + after.counts.slices_failed).toBe(slices.size);
    expect(after.sent).toEqual(baseline.sent);
    expect(after.doubledAttempts).toEqual([]);
    // Finished: nothing left to resume.
    expect((await swf('run', '--resume', String(baselineRun), '--store', url)).code).toBe(4);
  }

  it('refuses what cannot be resumed: an unknown run (3), --set (2)', async () => {
    const url = `sqlite:${join(dir, 'refusals.db')}`;
    await runInto(url, SET);
    expect((await swf('run', '--resume', '999999', '--store', url)).code).toBe(3);
    expect((await swf('run', '--resume', 'nope-0001', '--store', url)).code).toBe(3);
    const set = await swf('run', '--resume', String(baselineRun), '--set', 'fast_processing.seed=2', '--store', url);
    expect(set.code).toBe(2);
    expect(set.err).toMatch(/--set/);
  });
});
