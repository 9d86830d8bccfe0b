/** The `swf` command as a user runs it: the built JavaScript, a real store file. */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/index.js';

const exec = promisify(execFile);
const swf = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['dist/src/cli/main.js', ...args], {
      env: { ...process.env, SWF_STORE: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (e: unknown) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

describe('swf events read', () => {
  it('prints every event as one JSON object per line, positions and revisions as numbers', async () => {
    const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-cli-')), 'swf.db')}`;
    const store = await openEventStore(url);
    await store.appendToStream('run-100010', [
      { type: 'run_imminent', data: { run_id: '100010' }, metadata: { correlationId: 'c' } },
      { type: 'start_run', data: { run_id: '100010' } },
    ]);
    await store.appendToStream('data-100010', [{ type: 'stf_ready', data: { filename: 'swf.100010.000001.stf' } }]);
    await store.close();

    const all = await swf('events', 'read', '--json', '--store', url);
    expect(all.code).toBe(0);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.position, l.streamName, l.revision, l.type])).toEqual([
      [1, 'run-100010', 0, 'run_imminent'],
      [2, 'run-100010', 1, 'start_run'],
      [3, 'data-100010', 0, 'stf_ready'],
    ]);
    expect(lines[0]).toMatchObject({ data: { run_id: '100010' }, metadata: { correlationId: 'c' } });
    expect(typeof lines[0]!.recordedAt).toBe('string');

    const some = await swf('events', 'read', '--json', '--store', url, '--from', '2', '--limit', '1');
    expect(
      some.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { type: string }).type),
    ).toEqual(['start_run']);
    const stream = await swf('events', 'read', '--json', '--store', url, '--stream', 'data-100010');
    expect(stream.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('says what was wrong, on one line, with a non-zero exit code', async () => {
    const bad = await swf('events', 'read', '--store', 'nosuch:thing');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown store URL scheme 'nosuch:'/);
    const missing = await swf('events', 'read', '--store', 'memory:', '--stream', 'run-1');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/stream 'run-1' not found/);
    const flag = await swf('events', 'read', '--limit', 'ten', '--store', 'memory:');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--limit must be a whole number/);
    expect((await swf('frobnicate')).stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('lists the commands with --help', async () => {
    const help = await swf('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/events/);
  });
});

describe('the package', () => {
  it("is importable from plain Node: import { openEventStore } from 'swf-es'", async () => {
    const { stdout } = await exec(process.execPath, [
      '--input-type=module',
      '-e',
      "import { openEventStore } from 'swf-es'; const s = await openEventStore('memory:'); const r = await s.appendToStream('a', [{ type: 'T', data: {} }]); console.log(String(r.nextRevision));",
    ]);
    expect(stdout.trim()).toBe('0');
  });
});
