/** `swf events read --type/--run/--follow` and `swf events streams`. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/index.js';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-events-'));
const url = `sqlite:${join(dir, 'swf.db')}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const store = await openEventStore(url);
  await store.appendToStream('run-100010', [
    { type: 'run_imminent', data: { run_id: '100010' } },
    { type: 'start_run', data: { run_id: '100010' } },
  ]);
  await store.appendToStream('data-100010', [{ type: 'stf_ready', data: { filename: 'swf.100010.000001.stf' } }]);
  await store.appendToStream('run-100011', [{ type: 'run_imminent', data: { run_id: '100011' } }]);
  // A worker's event names its run in the metadata only.
  await store.appendToStream('worker-w1', [
    { type: 'slice_result', data: { tf_filename: 'x' }, metadata: { runNumber: 100010 } },
  ]);
  await store.appendToStream('data-100011', [{ type: 'stf_ready', data: { filename: 'swf.100011.000001.stf' } }]);
  await store.close();
});

const lines = (out: string): { position: number; streamName: string; type: string }[] =>
  out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { position: number; streamName: string; type: string });

describe('swf events read', () => {
  it('--type keeps the events of that type (repeatable)', async () => {
    const r = await swfIn(dir, 'events', 'read', '--json', '--type', 'stf_ready', '--store', url);
    expect(r.code, r.err).toBe(0);
    expect(lines(r.out).map((e) => e.streamName)).toEqual(['data-100010', 'data-100011']);
    const two = await swfIn(
      dir,
      'events',
      'read',
      '--json',
      '--type',
      'start_run',
      '--type',
      'slice_result',
      '--store',
      url,
    );
    expect(lines(two.out).map((e) => e.type)).toEqual(['start_run', 'slice_result']);
    // --limit counts what is printed.
    const one = await swfIn(dir, 'events', 'read', '--json', '--type', 'stf_ready', '--limit', '1', '--store', url);
    expect(lines(one.out).map((e) => e.streamName)).toEqual(['data-100010']);
    // In one stream.
    const inStream = await swfIn(
      dir,
      'events',
      'read',
      '--json',
      '--stream',
      'run-100010',
      '--type',
      'start_run',
      '--store',
      url,
    );
    expect(lines(inStream.out).map((e) => e.type)).toEqual(['start_run']);
  });

  it("--run keeps the run's streams and the events that name the run", async () => {
    const r = await swfIn(dir, 'events', 'read', '--json', '--run', '100010', '--store', url);
    expect(r.code, r.err).toBe(0);
    expect(lines(r.out).map((e) => `${e.streamName} ${e.type}`)).toEqual([
      'run-100010 run_imminent',
      'run-100010 start_run',
      'data-100010 stf_ready',
      'worker-w1 slice_result',
    ]);
    const both = await swfIn(dir, 'events', 'read', '--json', '--run', '100011', '--type', 'stf_ready', '--store', url);
    expect(lines(both.out).map((e) => e.streamName)).toEqual(['data-100011']);
    // A run with no events is named, not answered with nothing; one whose events --type filters out is not.
    const unknown = await swfIn(dir, 'events', 'read', '--run', '999999', '--store', url);
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toMatch(/no events of run 999999 in this store/);
    const filtered = await swfIn(dir, 'events', 'read', '--run', '100011', '--type', 'start_run', '--store', url);
    expect(filtered.code, filtered.err).toBe(0);
    expect(filtered.out).toBe('');
    const bad = await swfIn(dir, 'events', 'read', '--run', 'latest', '--store', url);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--run must be a run number, got 'latest'/);
  });

  it('names a mistyped subcommand', async () => {
    const r = await swfIn(dir, 'events', 'raed', '--store', url);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown events subcommand 'raed' \(did you mean 'read'\?\)/);
  });

  it('--follow prints the stored events, then the new ones as they are appended', async () => {
    let out = '';
    const io = {
      stdout: { write: (c: string) => ((out += c), true) } as unknown as NodeJS.WritableStream,
      stderr: { write: () => true } as unknown as NodeJS.WritableStream,
      env: {},
      cwd: dir,
    };
    const { main } = await import('../../src/cli/main.js');
    const followUrl = `sqlite:${join(dir, 'follow.db')}`;
    const done = main(
      ['events', 'read', '--follow', '--json', '--type', 'stf_ready', '--limit', '2', '--store', followUrl],
      io,
    );
    const store = await openEventStore(followUrl);
    try {
      await store.appendToStream('data-100012', [{ type: 'stf_ready', data: { n: 1 } }]);
      await expect.poll(() => lines(out).length, { timeout: 20_000 }).toBe(1);
      await store.appendToStream('run-100012', [{ type: 'start_run', data: {} }]);
      await store.appendToStream('data-100012', [{ type: 'stf_ready', data: { n: 2 } }]);
      expect(await done).toBe(0);
      expect(lines(out).map((e) => e.type)).toEqual(['stf_ready', 'stf_ready']);
    } finally {
      await store.close();
    }
  });

  it('--follow runs until Ctrl-C, then exits 0', async () => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', 'events', 'read', '--follow', '--store', url], {
      env: { ...process.env, SWF_STORE: '' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await expect.poll(() => out.trim().split('\n').length, { timeout: 30_000 }).toBe(6);
    child.kill('SIGINT');
    expect(await exit).toBe(0);
  }, 60_000);
});

describe('swf events streams', () => {
  it('lists each stream with its count, last revision, position and type', async () => {
    const r = await swfIn(dir, 'events', 'streams', '--json', '--store', url);
    expect(r.code, r.err).toBe(0);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toEqual([
      { streamName: 'run-100010', events: 2, lastRevision: 1, lastPosition: 2, lastType: 'start_run' },
      { streamName: 'data-100010', events: 1, lastRevision: 0, lastPosition: 3, lastType: 'stf_ready' },
      { streamName: 'run-100011', events: 1, lastRevision: 0, lastPosition: 4, lastType: 'run_imminent' },
      { streamName: 'worker-w1', events: 1, lastRevision: 0, lastPosition: 5, lastType: 'slice_result' },
      { streamName: 'data-100011', events: 1, lastRevision: 0, lastPosition: 6, lastType: 'stf_ready' },
    ]);
    const text = await swfIn(dir, 'events', 'streams', '--run', '100011', '--store', url);
    expect(text.out).toBe(
      'stream\tevents\tlast revision\tlast position\tlast type\nrun-100011\t1\t0\t4\trun_imminent\ndata-100011\t1\t0\t6\tstf_ready\n',
    );
    const unknown = await swfIn(dir, 'events', 'streams', '--run', '999999', '--store', url);
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toMatch(/no events of run 999999 in this store/);
    const refused = await swfIn(dir, 'events', 'streams', '--type', 'x', '--store', url);
    expect(refused.code).toBe(2);
  });
});
