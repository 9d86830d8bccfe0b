/**
 * Logs written before the workers reported to `results-<run>`: each worker had a stream of its own (`worker-<w>`,
 * shared by the runs it worked for). Replay and the determinism check still read such a run. The test turns a real
 * run's bundle into that layout, imports it, and replays it. (Such logs also have version-5 derived ids: the check
 * matches outputs by the hash part their ids share with today's — test/messages/envelope.unit.test.ts, deriveId.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-legacy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = `sqlite:${join(dir, 'source.db')}`;
const target = `sqlite:${join(dir, 'legacy.db')}`;
const swf = (...argv: string[]) => swfIn(dir, ...argv);
let summary: RunSummary;

interface Line {
  id: string;
  streamName: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  revision: number;
}

beforeAll(async () => {
  summary = await runInto(source, [
    'fast_processing.stf_count=3',
    'fast_processing.slices_per_sample=4',
    'fast_processing.worker_failure_rate=0.2',
  ]);
  const exported = await swf('export', String(summary.run_number), '--store', source);
  expect(exported.code).toBe(0);
  const [header, ...body] = exported.out.trimEnd().split('\n');
  const events = body.map((l) => JSON.parse(l) as Line);
  const revisions = new Map<string, number>();
  const legacy = events.map((e) => {
    const streamName = e.streamName.startsWith('results-')
      ? `worker-${String(e.data.worker ?? e.data.sender)}`
      : e.streamName;
    const revision = streamName === e.streamName ? e.revision : (revisions.get(streamName) ?? -1) + 1;
    revisions.set(streamName, revision);
    return { ...e, streamName, revision };
  });
  expect(legacy.some((e) => e.streamName.startsWith('worker-'))).toBe(true);
  expect(legacy.some((e) => e.streamName.startsWith('results-'))).toBe(false);
  const file = join(dir, 'legacy.ndjson');
  writeFileSync(file, [header, ...legacy.map((e) => JSON.stringify(e))].join('\n') + '\n');
  const imported = await swf('import', file, '--store', target);
  expect(imported.code, imported.err).toBe(0);
}, 90_000);

describe('a run recorded in the older layout (worker-* streams)', () => {
  it('replays to the same state as the run itself', async () => {
    const a = JSON.parse((await swf('replay', String(summary.run_number), '--store', source, '--json')).out) as {
      run_state: unknown;
      slices: unknown;
    };
    const b = JSON.parse((await swf('replay', String(summary.run_number), '--store', target, '--json')).out) as {
      run_state: unknown;
      slices: unknown;
    };
    expect(b.run_state).toEqual(a.run_state);
    expect(b.slices).toEqual(a.slices);
  });

  it('passes the determinism check, every recorded output matched', async () => {
    const r = await swf('replay', String(summary.run_number), '--store', target, '--check', '--json');
    expect(r.code, r.out + r.err).toBe(0);
    const v = JSON.parse(r.out) as { ok: boolean; outputs_compared: number };
    expect(v.ok).toBe(true);
    expect(v.outputs_compared).toBeGreaterThan(summary.slices.created);
  });
});
