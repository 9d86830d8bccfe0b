/**
 * `npm run bench:store`: the SQLite adapter against raw better-sqlite3 doing the same work on a minimal table
 * (global position key, unique (stream, revision), unique event id; WAL, synchronous=NORMAL), measured in one
 * run with a warm-up and interleaved rounds; plus subscription latency across processes and group throughput.
 * Then the PostgreSQL column (bench/store.postgres.ts): the PostgreSQL adapter beside plain `pg` running the same
 * SQL and beside the SQLite figures of the same run, its subscription latency, and a whole `swf run` on it.
 *
 * Options: --rounds N (default 3), --quick (smaller sizes, for a smoke test), --postgres URL (the server; default
 * postgres://postgres@127.0.0.1:5432/postgres; left out, saying why, when none answers), --pg-run-stfs N (STFs of
 * the `swf run` on PostgreSQL; default 1,000, --quick 20; 0 leaves it out), --group-only (only the
 * competing-consumers rows, SQLite and PostgreSQL, then the latency and the run), --latency-only (only the
 * subscription latency, SQLite then PostgreSQL, --rounds times).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { type EventStore, openEventStore } from '../src/index.js';
import { pgBench, pgReachable } from './store.postgres.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const rounds = Number(argv[argv.indexOf('--rounds') + 1] ?? 0) || 3;
const BATCH_STREAMS = quick ? 100 : 1000;
const BATCH_SIZE = 100;
const SINGLE_APPENDS = quick ? 2000 : 10_000;
const READ_EVENTS = quick ? 100_000 : 1_000_000;
const GROUP_EVENTS = quick ? 2000 : 10_000;
const option = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const PG_SERVER = option('--postgres') ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_RUN_STFS = Number(option('--pg-run-stfs') ?? (quick ? 20 : 1000));
/** Only the competing-consumers rows (SQLite and PostgreSQL), e.g. to measure them again alone. */
const GROUP_ONLY = argv.includes('--group-only');
/** Only the subscription latency, SQLite and PostgreSQL side by side, `rounds` times each (alternating). */
const LATENCY_ONLY = argv.includes('--latency-only');

const work = mkdtempSync(join(tmpdir(), 'swf-bench-'));
let fileNo = 0;
const newFile = (): string => join(work, `db-${fileNo++}.db`);

const payload = (i: number): Record<string, unknown> => ({
  msg_type: 'slice',
  run_id: '100010',
  execution_id: 'fast_processing-swf-0001',
  namespace: 'bench',
  content: {
    slice_id: i % 15,
    tf_filename: `swf.100010.${String(i).padStart(6, '0')}_tf_001_slice_000.tf`,
    start: i,
    end: i + 1,
    tf_count: 2,
  },
});
const meta = { schemaVersion: 1, correlationId: 'c', causationId: 'k', destination: '/queue/panda.transformer.slices' };

function rawDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, revision INTEGER NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream, revision))`);
  return db;
}

// ---- the measured tasks ----------------------------------------------------------------------------

function rawBatches(): number {
  const db = rawDb(newFile());
  const insert = db.prepare(
    `INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const tx = db.transaction((stream: string, base: number) => {
    const now = Date.now();
    for (let i = 0; i < BATCH_SIZE; i++) {
      insert.run(randomUUID(), stream, i, 'slice', JSON.stringify(payload(base + i)), JSON.stringify(meta), now);
    }
  });
  const t0 = performance.now();
  for (let s = 0; s < BATCH_STREAMS; s++) tx.immediate(`slices-${s}`, s * BATCH_SIZE);
  const secs = (performance.now() - t0) / 1000;
  db.close();
  return (BATCH_STREAMS * BATCH_SIZE) / secs;
}

async function adapterBatches(): Promise<number> {
  const store = await openEventStore(`sqlite:${newFile()}`);
  const t0 = performance.now();
  for (let s = 0; s < BATCH_STREAMS; s++) {
    const events = [];
    for (let i = 0; i < BATCH_SIZE; i++)
      events.push({ type: 'slice', data: payload(s * BATCH_SIZE + i), metadata: meta });
    await store.appendToStream(`slices-${s}`, events, { expectedRevision: 'no_stream' });
  }
  const secs = (performance.now() - t0) / 1000;
  await store.close();
  return (BATCH_STREAMS * BATCH_SIZE) / secs;
}

const SINGLE_STREAMS = 100;
const PG_SIZES = {
  batchStreams: BATCH_STREAMS,
  batchSize: BATCH_SIZE,
  singleAppends: SINGLE_APPENDS,
  singleStreams: SINGLE_STREAMS,
  readEvents: READ_EVENTS,
  groupEvents: GROUP_EVENTS,
};

function rawSingles(): number {
  const db = rawDb(newFile());
  const insert = db.prepare(
    `INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  // The unique (stream, revision) key is the minimal form of the expected-revision check.
  const tx = db.transaction((stream: string, revision: number, i: number) => {
    insert.run(randomUUID(), stream, revision, 'slice', JSON.stringify(payload(i)), JSON.stringify(meta), Date.now());
  });
  const revisions = new Array<number>(SINGLE_STREAMS).fill(-1);
  const t0 = performance.now();
  for (let i = 0; i < SINGLE_APPENDS; i++) {
    const s = i % SINGLE_STREAMS;
    tx.immediate(`worker-${s}`, ++revisions[s]!, i);
  }
  const secs = (performance.now() - t0) / 1000;
  db.close();
  return SINGLE_APPENDS / secs;
}

async function adapterSingles(): Promise<number> {
  const store = await openEventStore(`sqlite:${newFile()}`);
  const revisions = new Array<bigint | 'no_stream'>(SINGLE_STREAMS).fill('no_stream');
  const t0 = performance.now();
  for (let i = 0; i < SINGLE_APPENDS; i++) {
    const s = i % SINGLE_STREAMS;
    const r = await store.appendToStream(`worker-${s}`, [{ type: 'slice', data: payload(i), metadata: meta }], {
      expectedRevision: revisions[s]!,
    });
    revisions[s] = r.nextRevision;
  }
  const secs = (performance.now() - t0) / 1000;
  await store.close();
  return SINGLE_APPENDS / secs;
}

async function readFixture(): Promise<string> {
  const dir = resolve('.swf-bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `read-${READ_EVENTS}.db`);
  if (existsSync(file)) return file;
  process.stderr.write(`building the ${READ_EVENTS.toLocaleString()}-event read fixture once at ${file} ...\n`);
  const store = await openEventStore(`sqlite:${file}.tmp`);
  for (let s = 0; s < READ_EVENTS / 1000; s++) {
    await store.appendToStream(
      `slices-${s}`,
      Array.from({ length: 1000 }, (_, i) => ({ type: 'slice', data: payload(s * 1000 + i), metadata: meta })),
    );
  }
  await store.close();
  const db = new Database(`${file}.tmp`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  rmSync(`${file}.tmp-wal`, { force: true });
  rmSync(`${file}.tmp-shm`, { force: true });
  const { renameSync } = await import('node:fs');
  renameSync(`${file}.tmp`, file);
  return file;
}

function rawRead(file: string): number {
  const db = new Database(file, { readonly: true });
  // The fastest plain way found: pages of raw rows by position.
  const page = db
    .prepare(
      `SELECT position, id, stream, revision, type, data, metadata, recorded_at FROM events WHERE position > ? ORDER BY position LIMIT 1000`,
    )
    .raw();
  const t0 = performance.now();
  let n = 0;
  let last = 0;
  let sink = 0;
  for (;;) {
    const rows = page.all(last) as [number, string, string, number, string, string, string, number][];
    if (rows.length === 0) break;
    for (const r of rows) {
      const data = JSON.parse(r[5]) as { content: { start: number } };
      const m = JSON.parse(r[6]) as { schemaVersion: number };
      sink += data.content.start + m.schemaVersion;
      n++;
    }
    last = rows[rows.length - 1]![0];
  }
  const secs = (performance.now() - t0) / 1000;
  db.close();
  if (sink < 0) throw new Error('unreachable');
  return n / secs;
}

async function adapterRead(file: string): Promise<number> {
  const store = await openEventStore(`sqlite:${file}`);
  const t0 = performance.now();
  let n = 0;
  let sink = 0;
  for await (const e of store.readAll()) {
    sink +=
      (e.data as { content: { start: number } }).content.start +
      (e.metadata as { schemaVersion: number }).schemaVersion;
    n++;
  }
  const secs = (performance.now() - t0) / 1000;
  await store.close();
  if (n !== READ_EVENTS || sink < 0) throw new Error(`read ${n} events, expected ${READ_EVENTS}`);
  return n / secs;
}

async function subscriptionLatency(
  samples: number,
  url = `sqlite:${newFile()}`,
): Promise<{ p50: number; p99: number; max: number }> {
  const store = await openEventStore(url);
  const sub = store.subscribeToAll({ from: 'end', filter: { streamPrefix: ['latency-'] } });
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--append-child', url, String(samples)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((r) => createInterface({ input: child.stdout }).once('line', () => r()));
  await ready;
  const latencies: number[] = [];
  for await (const e of sub) {
    latencies.push(performance.timeOrigin + performance.now() - (e.data as { sentAt: number }).sentAt);
    if (latencies.length >= samples) break;
  }
  await sub.unsubscribe();
  await store.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1]! };
}

const latencyLine = (lat: { p50: number; p99: number; max: number }): string =>
  `subscription latency, append in another process → delivery: p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms (target p99 < 50 ms ${lat.p99 < 50 ? 'ok' : 'MISSED'})`;

async function appendChild(url: string, samples: number): Promise<void> {
  const store = await openEventStore(url);
  process.stdout.write('ready\n');
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < samples; i++) {
    await store.appendToStream('latency-1', [
      { type: 'Ping', data: { i, sentAt: performance.timeOrigin + performance.now() } },
    ]);
    await new Promise((r) => setTimeout(r, 3 + (i % 7)));
  }
  await store.close();
}

async function groupThroughput(members: number): Promise<number> {
  const store: EventStore = await openEventStore(`sqlite:${newFile()}`);
  for (let s = 0; s < GROUP_EVENTS / 1000; s++) {
    await store.appendToStream(
      'slices-1',
      Array.from({ length: 1000 }, (_, i) => ({ type: 'slice', data: payload(s * 1000 + i) })),
    );
  }
  let acked = 0;
  const subs = Array.from({ length: members }, () =>
    store.subscribeToGroup('slices-1', 'workers', { ackTimeoutMs: 60_000 }),
  );
  const t0 = performance.now();
  await Promise.all(
    subs.map(async (sub) => {
      for await (const e of sub) {
        await sub.ack(e);
        if (++acked >= GROUP_EVENTS) await Promise.all(subs.map((s) => s.unsubscribe()));
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await store.close();
  return acked / secs;
}

// ---- the run -----------------------------------------------------------------------------------

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function interleaved(name: string, raw: () => number | Promise<number>, adapter: () => Promise<number>) {
  await raw(); // warm-up
  await adapter();
  const r: number[] = [];
  const a: number[] = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      r.push(await raw());
      a.push(await adapter());
    } else {
      a.push(await adapter());
      r.push(await raw());
    }
  }
  return { name, raw: median(r), adapter: median(a), ratio: median(a) / median(r) };
}

async function main(): Promise<void> {
  if (argv[0] === '--append-child') return appendChild(argv[1]!, Number(argv[2]));
  process.stderr.write(`bench:store — ${rounds} interleaved rounds after a warm-up${quick ? ' (quick sizes)' : ''}\n`);
  if (LATENCY_ONLY) {
    const unreachable = await pgReachable(PG_SERVER);
    for (let i = 0; i < rounds; i++) {
      const lite = await subscriptionLatency(quick ? 100 : 300);
      console.log(`SQLite     ${latencyLine(lite)}`);
      if (unreachable) continue;
      const db = await pgBench(PG_SERVER, PG_SIZES, payload, meta).scratch();
      try {
        console.log(`PostgreSQL ${latencyLine(await subscriptionLatency(quick ? 100 : 300, db.url))}`);
      } finally {
        await db.drop();
      }
    }
    if (unreachable) console.log(`PostgreSQL left out: no server at ${PG_SERVER} (${unreachable})`);
    rmSync(work, { recursive: true, force: true });
    return;
  }
  if (GROUP_ONLY) {
    const group = await groupThroughput(8);
    console.log(`SQLite competing consumers: ${fmt(group)} events acked/s with 8 members`);
    await postgresColumn([], group);
    rmSync(work, { recursive: true, force: true });
    return;
  }
  const results = [];
  results.push({
    ...(await interleaved(`appends, batches of ${BATCH_SIZE} to ${BATCH_STREAMS} streams`, rawBatches, adapterBatches)),
    target: 0.8,
  });
  results.push({
    ...(await interleaved(
      `single-event appends, exact expected revision (${SINGLE_APPENDS})`,
      rawSingles,
      adapterSingles,
    )),
    target: 0.7,
  });
  const fixture = await readFixture();
  results.push({
    ...(await interleaved(
      `readAll of ${READ_EVENTS.toLocaleString('en-US')} events, data parsed`,
      () => rawRead(fixture),
      () => adapterRead(fixture),
    )),
    target: 0.8,
  });

  console.log(
    '\n| workload | raw better-sqlite3 (events/s) | swf-es SQLite adapter (events/s) | adapter / raw | target |',
  );
  console.log('|---|---:|---:|---:|---:|');
  for (const r of results) {
    const ok = r.ratio >= r.target ? 'ok' : 'BELOW';
    console.log(
      `| ${r.name} | ${fmt(r.raw)} | ${fmt(r.adapter)} | ${(r.ratio * 100).toFixed(0)}% | ≥ ${r.target * 100}% ${ok} |`,
    );
  }
  console.log(`\n${latencyLine(await subscriptionLatency(quick ? 100 : 300))}`);
  const group = await groupThroughput(8);
  console.log(
    `competing consumers: ${fmt(group)} events acked/s with 8 members (raw batched append rate beside it: ${fmt(results[0]!.raw)} events/s)`,
  );
  await postgresColumn(results, group);
  rmSync(work, { recursive: true, force: true });
}

/** Runs `swf run` on PostgreSQL to completion under /usr/bin/time -v: wall seconds, events, peak RSS. */
async function pgRun(url: string, stfs: number): Promise<string> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const useTime = existsSync('/usr/bin/time');
  const node = [process.execPath, cli, 'run', '--json', '--store', url, '--set', `fast_processing.stf_count=${stfs}`];
  const [cmd, args] = useTime ? ['/usr/bin/time', ['-v', ...node]] : [node[0]!, node.slice(1)];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) return `swf run failed (exit ${code}): ${stderr.slice(-500)}`;
  const summary = JSON.parse(stdout) as { wall_s: number; slices: { created: number; completed: number } };
  const store = await openEventStore(url);
  const events = Number((await store.headPosition()) ?? 0n);
  await store.close();
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1];
  return (
    `${stfs.toLocaleString('en-US')}-STF swf run on PostgreSQL: ${events.toLocaleString('en-US')} events in ${summary.wall_s.toFixed(1)} s ` +
    `(the run's wall_s) = ${fmt(events / summary.wall_s)} events/s; slices ${summary.slices.completed}/${summary.slices.created} completed; ` +
    `peak RSS ${rss ? `${(Number(rss) / 1024).toFixed(0)} MB (/usr/bin/time -v)` : 'not measured (no /usr/bin/time)'}`
  );
}

async function postgresColumn(sqlite: { name: string; adapter: number }[], sqliteGroup: number): Promise<void> {
  const unreachable = await pgReachable(PG_SERVER);
  if (unreachable) {
    console.log(
      `\nPostgreSQL column left out: no server at ${PG_SERVER} (${unreachable}); give one with --postgres URL`,
    );
    return;
  }
  const pgb = pgBench(PG_SERVER, PG_SIZES, payload, meta);
  const rows = [];
  if (!GROUP_ONLY) {
    const fixture = await pgb.readFixture();
    rows.push(
      await interleaved(sqlite[0]!.name, pgb.plainBatches, pgb.adapterBatches),
      await interleaved(sqlite[1]!.name, pgb.plainSingles, pgb.adapterSingles),
      await interleaved(
        sqlite[2]!.name,
        () => pgb.plainRead(fixture),
        () => pgb.adapterRead(fixture),
      ),
    );
  }
  rows.push(
    await interleaved(
      `competing consumers, 8 members, ${GROUP_EVENTS} events acked one by one`,
      () => pgb.plainGroup(8),
      () => pgb.adapterGroup(8),
    ),
  );
  const sqliteAdapter = [...sqlite.map((r) => r.adapter), sqliteGroup];
  console.log(`\nPostgreSQL (${PG_SERVER.replace(/:[^:@/]*@/, ':***@')}), same run:`);
  console.log(
    '| workload | plain pg, same SQL (events/s) | swf-es PostgreSQL adapter (events/s) | adapter / plain | target | SQLite adapter (events/s) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  rows.forEach((r, i) => {
    console.log(
      `| ${r.name} | ${fmt(r.raw)} | ${fmt(r.adapter)} | ${(r.ratio * 100).toFixed(0)}% | ≥ 70% ${r.ratio >= 0.7 ? 'ok' : 'BELOW'} | ${fmt(sqliteAdapter[i]!)} |`,
    );
  });
  const db = await pgb.scratch();
  try {
    console.log(`\nPostgreSQL ${latencyLine(await subscriptionLatency(quick ? 100 : 300, db.url))}`);
  } finally {
    await db.drop();
  }
  if (PG_RUN_STFS > 0) {
    const run = await pgb.scratch();
    try {
      console.log(await pgRun(run.url, PG_RUN_STFS));
    } finally {
      await run.drop();
    }
  }
}

await main();
