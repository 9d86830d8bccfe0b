/** `swf run` as a user runs it: the built JavaScript (`npm run build` first), a real store file. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'swf-run-e2e-'));
let files = 0;
const freshStore = (): string => `sqlite:${join(dir, `swf-${files++}.db`)}`;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does)`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without our variables, so the user's store, testbed file or log level do not leak in. */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWF_')));

function swf(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const SUMMARY_KEYS = [
  'agents',
  'duration_s',
  'execution_id',
  'messages',
  'namespace',
  'phase',
  'run_number',
  'slices',
  'stf_files',
  'store',
  'tf_samples',
  'wall_s',
];

describe('swf run', () => {
  it('prints exactly one JSON object with --json: the default run, 1,050 slices completed', async () => {
    const store = freshStore();
    const r = await swf('run', '--json', '--store', store);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(SUMMARY_KEYS);
    expect(s).toMatchObject({
      run_number: 100010,
      namespace: 'swf-es',
      phase: 'completed',
      stf_files: 10,
      tf_samples: 70,
      slices: { created: 1050, completed: 1050, failed: 0, retried: 0 },
      store,
    });
    expect(s.execution_id).toMatch(/^fast_processing-[A-Za-z0-9_.-]+-0001$/);
    expect(Object.keys(s.slices as object).sort()).toEqual(['completed', 'created', 'failed', 'retried']);
    const messages = s.messages as Record<string, unknown>;
    expect(Object.values(messages).every((n) => Number.isInteger(n))).toBe(true);
    expect(messages).toMatchObject({
      stf_gen: 10,
      stf_ready: 10,
      tf_file_registered: 70,
      slice: 1050,
      slice_result: 1050,
    });
    expect(Array.isArray(s.agents)).toBe(true);
    expect((s.agents as string[]).filter((a) => a.startsWith('panda-worker-'))).toHaveLength(30);
    expect(typeof s.duration_s).toBe('number');
    expect(typeof s.wall_s).toBe('number');
    // Progress goes to stderr, never to stdout.
    expect(r.stderr).toMatch(/slices 1050 done/);
  });

  it('exits 0 when the run finished with slices failed for good, and says how many', async () => {
    const r = await swf('run', '--json', '--store', freshStore(), '--set', 'fast_processing.worker_failure_rate=0.3');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      slices: { created: number; completed: number; failed: number; retried: number };
    };
    expect(s.slices.failed).toBeGreaterThan(0);
    expect(s.slices.retried).toBeGreaterThan(0);
    expect(s.slices.completed + s.slices.failed).toBe(s.slices.created);
  });

  it('prints the human summary without --json', async () => {
    const r = await swf('run', '--store', freshStore(), '--set', 'fast_processing.stf_count=2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Run 100010 Summary \(execution fast_processing-.+-0001, namespace swf-es\):/);
    expect(r.stdout).toMatch(/Status: completed, final phase: completed/);
    expect(r.stdout).toMatch(/STF files: 2 → TF samples: 14/);
    expect(r.stdout).toMatch(/Slices: 210 created, 210 completed, 0 failed for good, 0 retries/);
    expect(r.stdout).toMatch(/stf_gen × 2/);
    expect(r.stdout).toMatch(/Agents involved:/);
    expect(r.stdout.trimStart().startsWith('{')).toBe(false);
  });

  it('paces the run in realtime with --speed', async () => {
    const r = await swf(
      'run',
      '--json',
      '--store',
      freshStore(),
      '--realtime',
      '--speed',
      '50',
      '--set',
      'fast_processing.stf_count=1',
      '--set',
      'fast_processing.slice_processing_time=1',
      // A lease of 3 s / 50 = 60 ms of real time expires on a loaded machine (up to 10 slices failed for good
      // seen on two shared cores); this test is about pacing, so the lease is the longest allowed (100 s / 50 = 2 s).
      '--set',
      'fast_processing.slice_lease_factor=100',
    );
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { slices: { completed: number }; duration_s: number; wall_s: number };
    expect(s.slices.completed).toBe(105);
    // 5 + 1 + 5 + 2 + 1 + 0.1 + ~4 s of slices + 1 s, divided by 50: at least a quarter of a second of real time.
    expect(s.wall_s).toBeGreaterThan(0.25);
  });

  it('refuses a bad configuration value with one line naming the section and key, and a non-zero exit', async () => {
    const r = await swf('run', '--json', '--store', freshStore(), '--set', 'fast_processing.stf_sampling_rate=2');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/\[fast_processing\] stf_sampling_rate/);
  });

  it('refuses an unknown configuration key', async () => {
    const r = await swf('run', '--store', freshStore(), '--set', 'fast_processing.stf_sampling_speed=1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/stf_sampling_speed/);
  });

  it('says clearly when the store URL is unknown or the store unreachable', async () => {
    const unknown = await swf('run', '--json', '--store', 'nosuch:thing');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/unknown store URL scheme 'nosuch:'/);

    const unreachable = await swf('run', '--json', '--store', 'esdb://127.0.0.1:1?tls=false');
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stdout).toBe('');
    expect(unreachable.stderr).toMatch(/EventStoreDB at esdb:\/\/127\.0\.0\.1:1\?tls=false is unavailable/);

    const unwritable = await swf('run', '--json', '--store', 'sqlite:/proc/swf-no-such-dir/swf.db');
    expect(unwritable.code).not.toBe(0);
    expect(unwritable.stdout).toBe('');
    expect(unwritable.stderr).toMatch(/\/proc\/swf-no-such-dir\/swf\.db/);
  });

  it('refuses to read a store that is not there (a mistyped --store) and creates nothing', async () => {
    const missing = join(dir, 'typo', 'swf.db');
    for (const argv of [
      ['runs'],
      ['events', 'read'],
      ['replay', '100010'],
      ['export', '100010'],
      ['projections', 'status'],
    ]) {
      const r = await swf(...argv, '--store', `sqlite:${missing}`);
      expect(r.code, argv.join(' ')).toBe(5);
      expect(r.stderr).toMatch(new RegExp(`there is no store at ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    expect(existsSync(join(dir, 'typo'))).toBe(false);
  });
});
