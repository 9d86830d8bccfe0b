/**
 * Bundles whose header disagrees with their events are refused, naming the line; a run the store already holds is
 * a conflict (issue #12, point 6).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-bundle-checks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);
const source = `sqlite:${join(dir, 'source.db')}`;
let summary: RunSummary;
let lines: string[];

beforeAll(async () => {
  summary = await runInto(source, ['fast_processing.stf_count=1', 'fast_processing.slices_per_sample=3']);
  lines = (await swf('export', String(summary.run_number), '--store', source)).out.trimEnd().split('\n');
}, 60_000);

async function importText(name: string, text: string): Promise<{ code: number; err: string; events: string }> {
  const file = join(dir, `${name}.ndjson`);
  writeFileSync(file, text + '\n');
  const target = `sqlite:${join(dir, `${name}.db`)}`;
  const r = await swf('import', file, '--store', target);
  const events = await swf('events', 'read', '--json', '--store', target);
  return { code: r.code, err: r.err, events: events.out.trim() };
}

describe('bundle checks', () => {
  it('refuses a header naming another run than its events (exit 2, the line), storing nothing', async () => {
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    const next = summary.run_number + 1;
    const r = await importText(
      'other-run',
      [JSON.stringify({ ...header, run_number: next }), ...lines.slice(1)].join('\n'),
    );
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(new RegExp(`line \\d+: .*belongs to run ${summary.run_number}, the header's run is ${next}`));
    expect(r.events).toBe('');
  });

  it('refuses a header naming another execution than its events (exit 2)', async () => {
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    const r = await importText(
      'other-execution',
      [JSON.stringify({ ...header, execution_id: 'fast_processing-test-0099' }), ...lines.slice(1)].join('\n'),
    );
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/line \d+: .*belongs to (execution|run) /);
    expect(r.events).toBe('');
  });

  it('importing a run the store already holds is a conflict (exit 4)', async () => {
    const file = join(dir, 'same.ndjson');
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await swf('import', file, '--store', source);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/already holds run number/);
  });
});
