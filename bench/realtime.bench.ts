/**
 * `npm run bench:realtime`: a realtime run with the monitor following it, both processes' RSS sampled every 10 s
 * (issue 18). What each holds should follow the work in flight, so after the first minute the series stays flat
 * while the run takes STFs and the queue drains.
 *
 * 1. `swf monitor --port 0 --json` on a fresh SQLite store: it follows the log live.
 * 2. `swf run --realtime --speed 200 --set fast_processing.stf_count=2000 --json` on the same store.
 * 3. Every 10 s until the run exits: each process's VmRSS (from /proc/<pid>/status) and the monitor's RunState
 *    (`GET /api/run-states/<run>/`: slices completed, in flight).
 *
 * Target: each process's RSS is flat after the first minute: the highest sample of the second half of that span is
 * at most 10% above the highest of the first half (peaks, because the collector's sawtooth moves single samples by
 * a quarter either way).
 *
 * Options: --stfs N (default 2000), --speed N (default 200), --every S (sampling period, default 10).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const option = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
const STFS = option('stfs', 2000);
const SPEED = option('speed', 200);
const EVERY_S = option('every', 10);
const SETTLE_S = 60;
const TARGET_GROWTH = 0.1;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const NODE_FLAGS = (/^#!.*\bnode\b(.*)$/m.exec(readFileSync(CLI, 'utf8').split('\n', 1)[0]!)?.[1] ?? '')
  .trim()
  .split(/\s+/)
  .filter(Boolean);
const work = mkdtempSync(join(tmpdir(), 'swf-bench-realtime-'));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWF_')));

function start(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // keep only the tail: the run's progress lines would otherwise grow with the run
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { child, stdout: () => out, stderr: () => err };
}

const rssMb = (pid: number | undefined): number | undefined => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m && Number(m[1]) > 0 ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
};

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The highest sample of each half of the series. */
function halves(series: number[]): { first: number; second: number } {
  const mid = Math.floor(series.length / 2);
  return { first: Math.max(...series.slice(0, mid)), second: Math.max(...series.slice(mid)) };
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const store = `sqlite:${join(work, 'swf.db')}`;
  console.log(
    `swf realtime benchmark: ${STFS} STFs at --speed ${SPEED}, swf monitor following, RSS every ${EVERY_S} s ` +
      `(load average ${loadavg()[0]!.toFixed(1)})`,
  );
  const monitor = start(['monitor', '--port', '0', '--json', '--store', store]);
  const url = await until(
    'the monitor to start',
    () => {
      const line = monitor.stdout().split('\n')[0];
      return line ? (JSON.parse(line) as { url: string }).url : undefined;
    },
    60_000,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}: ${monitor.stderr()}`);
  });
  const run = start([
    'run',
    '--realtime',
    '--speed',
    String(SPEED),
    '--json',
    '--store',
    store,
    '--set',
    `fast_processing.stf_count=${STFS}`,
  ]);
  const exited = new Promise<number | null>((resolve) => run.child.on('close', resolve));
  let done = false;
  void exited.then(() => (done = true));

  const t0 = performance.now();
  const samples: { t: number; run?: number; monitor?: number; completed?: number; inFlight?: number }[] = [];
  console.log('| t s | swf run RSS MB | swf monitor RSS MB | slices completed | in flight |');
  console.log('|---:|---:|---:|---:|---:|');
  while (!done) {
    const t = (performance.now() - t0) / 1000;
    const sample: (typeof samples)[number] = { t, run: rssMb(run.child.pid), monitor: rssMb(monitor.child.pid) };
    try {
      const res = await fetch(`${url}/api/run-states/`);
      const body = (await res.json()) as { results?: Record<string, number>[] } | Record<string, number>[];
      const rows = Array.isArray(body) ? body : (body.results ?? []);
      const r = rows[0];
      if (r) {
        sample.completed = r.slices_completed;
        sample.inFlight = (r.slices_queued ?? 0) + (r.slices_processing ?? 0);
      }
    } catch {
      // the monitor's view is extra information; RSS is the measurement
    }
    samples.push(sample);
    const f = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(0));
    console.log(
      `| ${t.toFixed(0)} | ${f(sample.run)} | ${f(sample.monitor)} | ${f(sample.completed)} | ${f(sample.inFlight)} |`,
    );
    await Promise.race([exited, new Promise((r) => setTimeout(r, EVERY_S * 1000))]);
  }
  const code = await exited;
  monitor.child.kill('SIGTERM');
  if (code !== 0)
    throw new Error(`swf run exited with ${code}: ${run.stderr().trim().split('\n').slice(-5).join('\n')}`);
  const summary = JSON.parse(run.stdout()) as { slices: { created: number; completed: number } };
  console.log(
    `run finished: ${summary.slices.completed} of ${summary.slices.created} slices completed in ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s (load average ${loadavg()[0]!.toFixed(1)})`,
  );
  const settled = samples.filter((s) => s.t >= SETTLE_S);
  console.log(`targets (samples after the first ${SETTLE_S} s: ${settled.length}):`);
  for (const who of ['run', 'monitor'] as const) {
    const series = settled.map((s) => s[who]).filter((v): v is number => v !== undefined);
    if (series.length < 4) {
      console.log(`  swf ${who} RSS flat: too few samples after the first minute (a longer run: --stfs)`);
      continue;
    }
    const { first, second } = halves(series);
    console.log(
      `  swf ${who} RSS flat after the first minute (peak of the second half ≤ ${100 + TARGET_GROWTH * 100}% of the ` +
        `first's): ${first.toFixed(0)} → ${second.toFixed(0)} MB ${second <= first * (1 + TARGET_GROWTH) ? 'ok' : 'MISSED'}`,
    );
  }
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
