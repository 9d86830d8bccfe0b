/**
 * `swf agent data|fastmon|fast-processing|worker` stop cleanly on SIGINT and SIGTERM when idle (issue #12,
 * point 10), instead of sleeping out their 60 s heartbeat period first.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/crash.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-signals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('swf agent on a signal', () => {
  it.each([
    ['data', 'SIGTERM'],
    ['fastmon', 'SIGINT'],
    ['fast-processing', 'SIGTERM'],
    ['worker', 'SIGINT'],
  ] as const)(
    '%s stops cleanly on %s',
    async (kind, signal) => {
      const child = spawn(process.execPath, [CLI, 'agent', kind, '--store', `sqlite:${join(dir, `${kind}.db`)}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await expect.poll(() => err, { timeout: 20_000 }).toContain('running');
      child.kill(signal);
      // The heartbeat period is 60 s: an agent that slept it out would not have stopped in time.
      const stopped = await Promise.race([exit, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 10_000))]);
      if (stopped === 'alive') child.kill('SIGKILL');
      expect(stopped, err).toBe(0);
      expect(err).toContain(`swf agent ${kind}: stopped`);
    },
    40_000,
  );
});
