/**
 * swf import --renumber: a bundle imported into a store that already holds its run gets the store's next run
 * number and execution id, rewritten consistently.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-renumber-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = `sqlite:${join(dir, 'source.db')}`;
let summary: RunSummary;
let file: string;

const swf = (...argv: string[]) => swfIn(dir, ...argv);

beforeAll(async () => {
  summary = await runInto(source, [
    'fast_processing.stf_count=3',
    'fast_processing.slices_per_sample=4',
    'fast_processing.worker_failure_rate=0.2',
  ]);
  const exported = await swf('export', String(summary.run_number), '--store', source);
  file = join(dir, 'run.ndjson');
  writeFileSync(file, exported.out);
}, 60_000);

interface View {
  run_number: number;
  execution_id: string;
  events: number;
  run_state: Record<string, unknown>;
  slices: Record<string, number>;
  stf_files: number;
  tf_samples: number;
}

describe('swf import --renumber', () => {
  it('round trip into a store that already holds the run: the next run number and execution id, same run', async () => {
    // The source itself holds the run: a plain import is refused, --renumber makes it the next run.
    expect((await swf('import', file, '--store', source)).code).toBe(4);
    const r = await swf('import', file, '--store', source, '--renumber', '--json');
    expect(r.code, r.err).toBe(0);
    const result = JSON.parse(r.out) as { run_number: number; execution_id: string; renumbered_from: unknown };
    const next = summary.run_number + 1;
    expect(result).toMatchObject({
      run_number: next,
      execution_id: summary.execution_id.replace(/\d{4}$/, '0002'),
      renumbered_from: { run_number: summary.run_number, execution_id: summary.execution_id },
    });

    const original = JSON.parse(
      (await swf('replay', String(summary.run_number), '--store', source, '--json')).out,
    ) as View;
    const copy = JSON.parse((await swf('replay', String(next), '--store', source, '--json')).out) as View;
    expect(copy.run_number).toBe(next);
    expect(copy.execution_id).toBe(result.execution_id);
    expect(copy.events).toBe(original.events);
    expect(copy.slices).toEqual(original.slices);
    expect({ ...copy.run_state, run_id: null, execution_id: null }).toEqual({
      ...original.run_state,
      run_id: null,
      execution_id: null,
    });
    expect(copy.run_state).toMatchObject({ run_id: String(next), execution_id: result.execution_id });

    // Names, streams and metadata follow; the old run number and execution id appear nowhere in the copy.
    const events = (await swf('events', 'read', '--store', source, '--json')).out
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            streamName: string;
            type: string;
            data: Record<string, unknown>;
            metadata: Record<string, unknown>;
          },
      );
    const copied = events.filter(
      (e) => e.metadata.executionId === result.execution_id || e.metadata.runNumber === next,
    );
    expect(copied.length).toBeGreaterThan(0);
    const stf = copied.find((e) => e.type === 'stf_gen')!;
    expect(stf.streamName).toBe(`run-${next}`);
    expect(stf.data.filename).toBe(`swf.${next}.000001.stf`);
    for (const e of copied) {
      const text = JSON.stringify({ s: e.streamName, d: e.data, m: e.metadata });
      expect(text).not.toMatch(new RegExp(`(?<![0-9])${summary.run_number}(?![0-9])`));
      expect(text).not.toContain(summary.execution_id);
    }

    // Once more: the run after that; and a new run in the store comes after the imported ones.
    const again = JSON.parse((await swf('import', file, '--store', source, '--renumber', '--json')).out) as {
      run_number: number;
    };
    expect(again.run_number).toBe(next + 1);
    const s = await runInto(source, ['fast_processing.stf_count=1']);
    expect(s.run_number).toBe(next + 2);
    expect(s.execution_id).toMatch(/-0004$/);
  }, 60_000);

  it('into an empty store, --renumber gives the first run number', async () => {
    const target = `sqlite:${join(dir, 'empty.db')}`;
    const r = await swf('import', file, '--store', target, '--renumber', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ run_number: 100010, execution_id: expect.stringMatching(/-0001$/) });
  });
});
