/**
 * An imported run is history (issue #12, point 1): the agents of a later `swf run`, resuming from their
 * checkpoints, and those of a run going on while the import happens, never act on it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-imported-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);
const SMALL = ['fast_processing.stf_count=3', 'fast_processing.slices_per_sample=4'];

/** Events per type that belong to run `run` (by body or metadata). */
async function typesOfRun(url: string, run: number): Promise<Record<string, number>> {
  const store: EventStore = await openEventStore(url);
  const counts: Record<string, number> = {};
  try {
    for await (const e of store.readAll()) {
      const m = e.metadata as { runNumber?: unknown } | null;
      const d = e.data as { run_id?: unknown } | null;
      if (m?.runNumber !== run && d?.run_id !== String(run)) continue;
      if (e.type === 'agent_heartbeat') continue;
      counts[e.type] = (counts[e.type] ?? 0) + 1;
    }
  } finally {
    await store.close();
  }
  return counts;
}

async function exportOf(url: string, run: number, name: string): Promise<string> {
  const r = await swf('export', String(run), '--store', url);
  expect(r.code, r.err).toBe(0);
  const file = join(dir, name);
  writeFileSync(file, r.out);
  return file;
}

describe('imported runs are history', () => {
  it('the agents of a later swf run do not process an imported (renumbered) run again', async () => {
    const url = `sqlite:${join(dir, 'later.db')}`;
    const first = await runInto(url, SMALL);
    const file = await exportOf(url, first.run_number, 'later.ndjson');
    const imported = await swf('import', file, '--renumber', '--json', '--store', url);
    expect(imported.code, imported.err).toBe(0);
    const run = (JSON.parse(imported.out) as { run_number: number }).run_number;
    const before = await typesOfRun(url, run);
    expect(before.slice).toBeGreaterThan(0);
    expect(before.RunFinished).toBe(1);

    const next = await runInto(url, SMALL);
    expect(next.run_number).toBe(run + 1);
    expect(next.status).toBe('completed');
    expect(await typesOfRun(url, run)).toEqual(before);
  }, 60_000);

  it('nor do the agents of a run going on while the import happens', async () => {
    const url = `sqlite:${join(dir, 'live.db')}`;
    const first = await runInto(url, SMALL);
    const file = await exportOf(url, first.run_number, 'live.ndjson');
    // A longer run, so that the import lands while its agents are live.
    const live = runInto(url, ['fast_processing.stf_count=40', 'fast_processing.slices_per_sample=4']);
    const imported = await swf('import', file, '--renumber', '--json', '--store', url);
    expect(imported.code, imported.err).toBe(0);
    const run = (JSON.parse(imported.out) as { run_number: number }).run_number;
    const before = await typesOfRun(url, run);
    const summary = await live;
    expect(summary.status).toBe('completed');
    expect(summary.run_number).not.toBe(run);
    expect(await typesOfRun(url, run)).toEqual(before);
  }, 60_000);
});
