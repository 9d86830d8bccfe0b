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
 * Targets: default run < 3 s wall; 1,000-STF run ≥ 40% of the raw batched rate (events over the run's own wall
 * time, the `wall_s` it reports) and peak RSS < 500 MB.
 *
 * Options: --quick (100 STFs instead of 1,000, smaller raw rounds: a smoke test; the targets are still printed).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openEventStore } from '../src/index.js';

const quick = process.argv.includes('--quick');
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
function runCli(args: string[], measureRss: boolean): Promise<ChildRun> {
  const useTime = measureRss && existsSync(TIME);
  const node = [process.execPath, ...NODE_FLAGS, CLI, ...args];
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
async function benchRun(name: string, sets: string[], measureRss: boolean): Promise<RunFigures> {
  const file = join(work, `${name}.db`);
  const args = ['run', '--json', '--store', `sqlite:${file}`, ...sets.flatMap((s) => ['--set', s])];
  const r = await runCli(args, measureRss);
  if (r.code !== 0) {
    throw new Error(`swf ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  const summary = JSON.parse(r.stdout) as { wall_s: number; slices: RunFigures['slices'] };
  const store = await openEventStore(`sqlite:${file}`);
  const head = await store.headPosition();
  await store.close();
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

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  console.log(`swf run benchmark, node ${process.version} ${NODE_FLAGS.join(' ')}${quick ? ' (--quick)' : ''}`);

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
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
