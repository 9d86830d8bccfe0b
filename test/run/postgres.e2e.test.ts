/**
 * `swf run --store postgres://…`: the whole workflow in one process on the PostgreSQL store gets the same counts
 * as on SQLite with the same seed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/index.js';
import { postgresSkipReason, type ScratchDatabase, scratchDatabase } from '../helpers/postgres.js';

const CLI = 'dist/src/cli/main.js';
const SETS = ['fast_processing.stf_count=4', 'fast_processing.slice_processing_time=3'].flatMap((s) => ['--set', s]);

interface Summary {
  stf_files: number;
  tf_samples: number;
  slices: { created: number; completed: number; failed: number; retried: number };
  messages: Record<string, number>;
}

function swfRun(store: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, 'run', '--json', '--store', store, ...SETS], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, USER: 'tester' },
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code, stdout, stderr })));
}

let db: ScratchDatabase | undefined;
afterAll(async () => {
  await db?.drop();
});

describe.skipIf(postgresSkipReason !== undefined)('swf run on PostgreSQL', () => {
  it('finishes with the same counts as the same run on SQLite, and the log holds every slice once', async () => {
    db = await scratchDatabase('run');
    const [pg, lite] = await Promise.all([
      swfRun(db.url),
      swfRun(`sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-pg-run-')), 'swf.db')}`),
    ]);
    expect(pg.code, pg.stderr).toBe(0);
    expect(lite.code, lite.stderr).toBe(0);
    const a = JSON.parse(pg.stdout) as Summary;
    const b = JSON.parse(lite.stdout) as Summary;
    expect(a.slices).toEqual({ created: 420, completed: 420, failed: 0, retried: 0 });
    expect(a.slices).toEqual(b.slices);
    expect([a.stf_files, a.tf_samples]).toEqual([b.stf_files, b.tf_samples]);
    for (const t of ['stf_gen', 'stf_ready', 'tf_file_registered', 'slice', 'slice_result', 'end_run'])
      expect(a.messages[t], t).toBe(b.messages[t]);

    const store = await openEventStore(db.url);
    const slices = new Set<string>();
    let positions = 0n;
    for await (const e of store.readAll()) {
      expect(e.position).toBe(++positions);
      if (e.type === 'slice') slices.add((e.data as { content: { tf_filename: string } }).content.tf_filename);
    }
    await store.close();
    expect(slices.size).toBe(420);
  }, 180_000);
});
