/**
 * `npm run bench:run`: complete runs through the built CLI, as a user starts them, against the raw SQLite batched
 * append rate measured in the same script (DESIGN.md, issue 5 "Performance").
 *
 * 1. The default run (`swf run --json --store sqlite:<tmp>`, virtual time) as a child process: wall seconds
 *    including Node's start-up, events appended (the fresh store's head position), events/s.
 * 2. A 1,000-STF run (`--set fast_processing.stf_count=1000`, 105,000 slices) as a child process: wall seconds,
 *    events/s, peak RSS (`/usr/bin/time -v` if present, else VmHWM polled from /proc/<pid>/status).
 * 3. The raw better-sqlite3 batched append rate: batches of 100 events to fresh streams, one transaction each, on
 *    a minimal table (INTEGER PRIMARY KEY position, unique id, unique (stream, revision); WAL, synchronous=NORMAL),
 *    best of 3 rounds.
 *
 * 4. Growth (issue 18): runs of 100, 1,000 and 10,000 STFs, each a child process with its events/s (over the run's
 *    own wall time) and peak RSS, then the 10,000-STF run again under `--max-old-space-size=256`. What a run holds
 *    should follow the work in flight, not the run's length (docs/run.md "Memory").
 *
 * Targets: default run < 3 s wall; 1,000-STF run ≥ 40% of the raw batched rate (events over the run's own wall
 * time, the `wall_s` it reports) and peak RSS < 500 MB; 10,000-STF run peak RSS < 300 MB, under the 256 MB heap
 * cap at ≥ 90% of its uncapped rate, and at ≥ 85% of the 1,000-STF run's rate.
 *
 * Options: --quick (100 STFs instead of 1,000, smaller raw rounds, growth over 100/300/1,000 STFs: a smoke test;
 * the targets are still printed); --growth (only the growth table); --no-growth (everything but the growth table).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openEventStore } from '../src/index.js';

const quick = process.argv.includes('--quick');
const growthOnly = process.argv.includes('--growth');
const noGrowth = process.argv.includes('--no-growth');
const GROWTH_STFS = quick ? [100, 300, 1000] : [100, 1000, 10_000];
const HEAP_CAP_MB = 256;
const TARGET_LONG_RSS_MB = 300;
const TARGET_CAPPED_RATIO = 0.9;
const TARGET_FLAT_RATIO = 0.85;
const STF_COUNT = quick ? 100 : 1000;
const RAW_STREAMS = quick ? 200 : 1000;
const RAW_BATCH = 100;
const RAW_ROUNDS = 3;

const TARGET_DEFAULT_WALL_S = 3;
const TARGET_RATIO = 0.4;
const TARGET_RSS_MB = 500;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Node's flags as `swf` runs (its `#!/usr/bin/env -S node <flags>` line, which `npm start` repeats). */
const NODE_FLAGS = (/^#!.*\bnode\b(.*)$/m.exec(readFileSync(CLI, 'utf8').split('\n', 1)[0]!)?.[1] ?? '')
  .trim()
  .split(/\s+/)
  .filter(Boolean);
const TIME = '/usr/bin/time';
const work = mkdtempSync(join(tmpdir(), 'swf-bench-run-'));

interface ChildRun {
  wallSeconds: number;
  stdout: string;
  stderr: string;
  code: number | null;
  peakRssMb?: number;
  rssSource: string;
}

/** Runs `node <cli> args...` to completion, timing it from spawn to exit and measuring its peak RSS if asked. */
function runCli(args: string[], measureRss: boolean, nodeFlags: string[] = []): Promise<ChildRun> {
  const useTime = measureRss && existsSync(TIME);
  const node = [process.execPath, ...NODE_FLAGS, ...nodeFlags, CLI, ...args];
  const [cmd, argv] = useTime ? [TIME, ['-v', ...node]] : [node[0]!, node.slice(1)];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWF_')));
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let hwmKb = 0;
    const poll =
      measureRss && !useTime
        ? setInterval(() => {
            try {
              const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
              if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
            } catch {
              // the process has just exited
            }
          }, 50)
        : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      const wallSeconds = (performance.now() - t0) / 1000;
      if (poll) clearInterval(poll);
      const result: ChildRun = { wallSeconds, stdout, stderr, code, rssSource: 'not measured' };
      if (useTime) {
        const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
        if (m) result.peakRssMb = Number(m[1]) / 1024;
        result.rssSource = '/usr/bin/time -v';
      } else if (measureRss) {
        result.peakRssMb = hwmKb / 1024;
        result.rssSource = `VmHWM polled every 50 ms`;
      }
      resolve(result);
    });
  });
}

interface RunFigures {
  wallSeconds: number;
  runWallSeconds: number;
  events: number;
  slices: { created: number; completed: number; failed: number; retried: number };
  peakRssMb?: number;
  rssSource: string;
}

/** One `swf run --json` on a fresh SQLite file; the events appended are the fresh store's head position. */
async function benchRun(
  name: string,
  sets: string[],
  measureRss: boolean,
  nodeFlags: string[] = [],
): Promise<RunFigures> {
  const file = join(work, `${name}.db`);
  const args = ['run', '--json', '--store', `sqlite:${file}`, ...sets.flatMap((s) => ['--set', s])];
  const r = await runCli(args, measureRss, nodeFlags);
  if (r.code !== 0) {
    throw new Error(`swf ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  const summary = JSON.parse(r.stdout) as { wall_s: number; slices: RunFigures['slices'] };
  const store = await openEventStore(`sqlite:${file}`);
  const head = await store.headPosition();
  await store.close();
  // A 10,000-STF store is a gigabyte or more: keep the temporary folder small between runs.
  for (const suffix of ['', '-wal', '-shm', '.views.db']) rmSync(`${file}${suffix}`, { force: true });
  return {
    wallSeconds: r.wallSeconds,
    runWallSeconds: summary.wall_s,
    events: Number(head ?? 0n),
    slices: summary.slices,
    ...(r.peakRssMb !== undefined ? { peakRssMb: r.peakRssMb } : {}),
    rssSource: r.rssSource,
  };
}

/** A slice message of about the size the run writes. */
const payload = (i: number): string =>
  JSON.stringify({
    msg_type: 'slice',
    namespace: 'swf-es',
    sender: 'fast_processing-agent-bench',
    execution_id: 'fast_processing-bench-0001',
    run_id: '100010',
    created_at: '2026-01-15T11:00:00.000Z',
    content: {
      run_id: '100010',
      execution_id: 'fast_processing-bench-0001',
      req_id: randomUUID(),
      filename: 'swf.100010.000001.stf',
      tf_filename: `swf.100010.${String(i).padStart(6, '0')}_tf_001_slice_000.tf`,
      fastmon_file: 'swf.100010.000001_tf_001.tf',
      slice_id: i % 15,
      start: i,
      end: i + 1,
      tf_count: 2,
      state: 'queued',
      substate: 'new',
      attempt: 1,
      slice_processing_time: 30,
      file_type: 'fake',
    },
  });
const metadata = JSON.stringify({
  schemaVersion: 1,
  correlationId: randomUUID(),
  causationId: randomUUID(),
  destination: '/queue/panda.transformer.slices',
  namespace: 'swf-es',
  executionId: 'fast_processing-bench-0001',
  runNumber: 100010,
});

/** Raw better-sqlite3: batches of 100 events to fresh streams, one immediate transaction per batch. */
function rawBatchedRate(round: number): number {
  const db = new Database(join(work, `raw-${round}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (
    position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, revision INTEGER NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    UNIQUE (stream, revision))`);
  const insert = db.prepare(
    'INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const batch = db.transaction((stream: string, base: number) => {
    const now = Date.now();
    for (let i = 0; i < RAW_BATCH; i++) insert.run(randomUUID(), stream, i, 'slice', payload(base + i), metadata, now);
  });
  const t0 = performance.now();
  for (let s = 0; s < RAW_STREAMS; s++) batch.immediate(`slices-${s}`, s * RAW_BATCH);
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return (RAW_STREAMS * RAW_BATCH) / seconds;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');

/** Growth with the run's length: events/s and peak RSS by STF count, and the longest run under a heap cap. */
async function growth(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  console.log(`\ngrowth (virtual time, default configuration but stf_count; load average ${loadBefore.toFixed(1)}):`);
  console.log('| STFs | slices | events | run wall s | events/s | peak RSS MB |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  const row = (label: string, f: RunFigures): number => {
    const rate = f.events / f.runWallSeconds;
    console.log(
      `| ${label} | ${fmt(f.slices.created)} | ${fmt(f.events)} | ${f.runWallSeconds.toFixed(1)} | ${fmt(rate)} | ` +
        `${f.peakRssMb !== undefined ? f.peakRssMb.toFixed(0) : '?'} |`,
    );
    return rate;
  };
  const rates = new Map<number, { rate: number; rss: number | undefined }>();
  for (const n of GROWTH_STFS) {
    const f = await benchRun(`growth-${n}`, [`fast_processing.stf_count=${n}`], true);
    rates.set(n, { rate: row(fmt(n), f), rss: f.peakRssMb });
  }
  const longest = GROWTH_STFS[GROWTH_STFS.length - 1]!;
  const middle = GROWTH_STFS[GROWTH_STFS.length - 2]!;
  const capped = await benchRun(`growth-${longest}-capped`, [`fast_processing.stf_count=${longest}`], true, [
    `--max-old-space-size=${HEAP_CAP_MB}`,
  ]);
  const cappedRate = row(`${fmt(longest)}, --max-old-space-size=${HEAP_CAP_MB}`, capped);
  console.log(`(peak RSS by ${capped.rssSource}; load average at the end ${loadavg()[0]!.toFixed(1)})`);
  const long = rates.get(longest)!;
  const mid = rates.get(middle)!;
  console.log('targets:');
  console.log(
    `  ${fmt(longest)}-STF run peak RSS < ${TARGET_LONG_RSS_MB} MB: ` +
      (long.rss !== undefined
        ? `${long.rss.toFixed(0)} MB ${verdict(long.rss < TARGET_LONG_RSS_MB)}`
        : 'unknown MISSED'),
  );
  console.log(
    `  ${fmt(longest)}-STF run under a ${HEAP_CAP_MB} MB heap cap at ≥ ${TARGET_CAPPED_RATIO * 100}% of its rate: ` +
      `${((cappedRate / long.rate) * 100).toFixed(0)}% ${verdict(cappedRate >= TARGET_CAPPED_RATIO * long.rate)}`,
  );
  console.log(
    `  ${fmt(longest)}-STF run at ≥ ${TARGET_FLAT_RATIO * 100}% of the ${fmt(middle)}-STF rate: ` +
      `${((long.rate / mid.rate) * 100).toFixed(0)}% ${verdict(long.rate >= TARGET_FLAT_RATIO * mid.rate)}`,
  );
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  console.log(`swf run benchmark, node ${process.version} ${NODE_FLAGS.join(' ')}${quick ? ' (--quick)' : ''}`);
  if (growthOnly) return growth();

  // Warm the file cache for the CLI's modules, so the first measured run is not a cold start of the disk.
  await runCli(['--help'], false);

  const def = await benchRun('default', [], false);
  console.log(
    `\ndefault run (10 STFs, 1,050 slices): wall ${def.wallSeconds.toFixed(2)} s including start-up ` +
      `(run itself ${def.runWallSeconds.toFixed(2)} s), ${fmt(def.events)} events, ` +
      `${fmt(def.events / def.wallSeconds)} events/s over the wall time`,
  );

  const raw: number[] = [];
  for (let round = 0; round < RAW_ROUNDS; round++) raw.push(rawBatchedRate(round));
  const rawBest = Math.max(...raw);
  console.log(
    `raw better-sqlite3 batched appends (${RAW_STREAMS} batches of ${RAW_BATCH}): best ${fmt(rawBest)} events/s ` +
      `(rounds: ${raw.map(fmt).join(', ')})`,
  );

  const big = await benchRun(`stf-${STF_COUNT}`, [`fast_processing.stf_count=${STF_COUNT}`], true);
  const runRate = big.events / big.runWallSeconds;
  const wallRate = big.events / big.wallSeconds;
  console.log(
    `${fmt(STF_COUNT)}-STF run (${fmt(big.slices.created)} slices, ${fmt(big.slices.completed)} completed): ` +
      `wall ${big.wallSeconds.toFixed(2)} s including start-up and the summary (run itself ${big.runWallSeconds.toFixed(2)} s), ` +
      `${fmt(big.events)} events, ${fmt(runRate)} events/s over the run (${fmt(wallRate)} over the wall time), ` +
      `peak RSS ${big.peakRssMb !== undefined ? `${big.peakRssMb.toFixed(0)} MB` : 'unknown'} (${big.rssSource})`,
  );

  const ratio = runRate / rawBest;
  console.log('\ntargets:');
  console.log(
    `  default run < ${TARGET_DEFAULT_WALL_S} s wall: ${def.wallSeconds.toFixed(2)} s ` +
      verdict(def.wallSeconds < TARGET_DEFAULT_WALL_S),
  );
  console.log(
    `  ${fmt(STF_COUNT)}-STF run ≥ ${TARGET_RATIO * 100}% of the raw batched rate: ${(ratio * 100).toFixed(0)}% ` +
      `(${fmt(runRate)} / ${fmt(rawBest)} events/s; over the whole wall time ${((wallRate / rawBest) * 100).toFixed(0)}%) ` +
      verdict(ratio >= TARGET_RATIO),
  );
  console.log(
    `  ${fmt(STF_COUNT)}-STF run peak RSS < ${TARGET_RSS_MB} MB: ` +
      (big.peakRssMb !== undefined
        ? `${big.peakRssMb.toFixed(0)} MB ${verdict(big.peakRssMb < TARGET_RSS_MB)}`
        : 'unknown MISSED'),
  );
  if (quick) console.log('  (--quick: 100 STFs; the targets are for the 1,000-STF run)');

  if (!noGrowth) await growth();
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
