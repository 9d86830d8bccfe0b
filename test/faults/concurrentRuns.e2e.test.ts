/**
 * Two `swf run` started on one store at the same moment (issue #12, point 3): the agents of a user claim their
 * names before the run writes anything, so the second refuses (exit 4) and leaves no execution behind, or, if the
 * first has finished by then, both go through with distinct run numbers.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-concurrent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

function swfRun(url: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [cli, 'run', '--json', '--store', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, USER: 'twin' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

describe('two swf run at the same moment on one store', () => {
  it.each([1, 2, 3])(
    'pair %i: both go through, or the second refuses before writing anything',
    async (i) => {
      const url = `sqlite:${join(dir, `pair-${i}.db`)}`;
      const results = await Promise.all([swfRun(url), swfRun(url)]);
      const codes = results.map((r) => r.code).sort();
      expect([
        [0, 0],
        [0, 4],
      ]).toContainEqual(codes);
      const refused = results.find((r) => r.code === 4);
      if (refused) expect(refused.err).toMatch(/agent fast_processing-agent-twin is already running/);
      const ran = results.filter((r) => r.code === 0).map((r) => JSON.parse(r.out) as { run_number: number });
      expect(new Set(ran.map((r) => r.run_number)).size).toBe(ran.length);
      // Every execution the store holds finished: none is left in `imminent`.
      const runs = await swfIn(dir, 'runs', '--json', '--store', url);
      expect(runs.code, runs.err).toBe(0);
      const list = JSON.parse(runs.out) as { execution_id: string; status: string }[] | { executions: unknown[] };
      const executions = (Array.isArray(list) ? list : list.executions) as { status: string }[];
      expect(executions).toHaveLength(ran.length);
      for (const e of executions) expect(e.status).toBe('completed');
    },
    60_000,
  );
});
