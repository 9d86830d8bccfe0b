/**
 * A full disk and a read-only file system (issue #12, point 8): every command says so in one line naming the file,
 * and exits 5, with no stack trace. Needs root to mount small tmpfs file systems; says so and skips otherwise
 * (never in CI, which runs as root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/crash.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-disk-'));
const full = join(dir, 'full');
const ro = join(dir, 'ro');
const mounted: string[] = [];

function mount(target: string, size: string): boolean {
  mkdirSync(target, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', target], { stdio: 'pipe' });
    mounted.push(target);
    return true;
  } catch {
    return false;
  }
}

let canMount = false;
beforeAll(() => {
  canMount = mount(full, '700k') && mount(ro, '20m');
  if (!canMount && process.env.CI) throw new Error('CI runs as root: mounting a tmpfs must work here');
  if (!canMount)
    console.warn('skipped: the full-disk and read-only tests need root (mount -t tmpfs); run them as root');
});
afterAll(() => {
  for (const m of mounted.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
});

function swf(...argv: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', cwd: dir, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The command's own lines on stderr (pino's JSON log lines aside). */
const ownLines = (err: string): string[] => err.split('\n').filter((l) => l !== '' && !l.startsWith('{"level"'));

describe('a full disk', () => {
  it('swf run, runs and projections say the disk is full, name the file, exit 5, no stack trace', (ctx) => {
    if (!canMount) return ctx.skip();
    const store = join(full, 'swf.db');
    const run = swf('run', '--store', `sqlite:${store}`);
    expect(run.code, run.err).toBe(5);
    const lines = ownLines(run.err).filter((l) => !/^\S+ run \d+ \[/.test(l));
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^swf run: .*${store}.*the disk is full`))]);
    expect(run.err).not.toMatch(/^\s+at /m);
    for (const argv of [['runs'], ['projections', 'rebuild']]) {
      const r = swf(...argv, '--store', `sqlite:${store}`);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(5);
      expect(ownLines(r.err)).toEqual([expect.stringMatching(/the disk is full/)]);
      expect(r.err).toContain(full);
    }
  });
});

describe('a read-only file system', () => {
  it('every command says the file system is read-only, names the folder, exits 5', (ctx) => {
    if (!canMount) return ctx.skip();
    const store = join(ro, 'swf.db');
    const first = swf('run', '--set', 'fast_processing.stf_count=1', '--store', `sqlite:${store}`);
    expect(first.code, first.err).toBe(0);
    execFileSync('mount', ['-o', 'remount,ro', ro]);
    for (const argv of [['run'], ['runs'], ['events', 'read'], ['export', '100010'], ['replay', '100010']]) {
      const r = swf(...argv, '--store', `sqlite:${store}`);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(5);
      expect(ownLines(r.err), argv.join(' ')).toEqual([expect.stringMatching(/read-only/)]);
      expect(r.err).toContain(ro);
    }
  });
});
