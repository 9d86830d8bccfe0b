/**
 * A reader that closes stdout early (`swf events read | head -1`, issue #12 point 11): the command stops quietly,
 * exit 0, no EPIPE stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/crash.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-epipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const url = `sqlite:${join(dir, 'swf.db')}`;

beforeAll(async () => {
  await runInto(url, ['fast_processing.stf_count=3']);
}, 60_000);

/** Runs `swf ...argv`, closes its stdout after the first chunk, and returns its exit code and stderr. */
function headOne(...argv: string[]): Promise<{ code: number | null; err: string; got: string }> {
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let got = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout.once('data', (b: Buffer) => {
    got = b.toString().split('\n')[0]!;
    child.stdout.destroy();
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, err, got })));
}

describe('stdout closed by the reader', () => {
  it.each([
    ['events', 'read'],
    ['events', 'read', '--json'],
    ['export', '100010'],
  ])('swf %s %s stops quietly', async (...argv) => {
    const r = await headOne(...argv, '--store', url);
    expect(r.got.length).toBeGreaterThan(0);
    expect(r.err).not.toMatch(/EPIPE|^\s+at /m);
    expect(r.code).toBe(0);
  });
});
