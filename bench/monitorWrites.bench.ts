/**
 * `npm run bench:monitor-writes`: the testbed write API of `swf monitor` (a process of its own, durable SQLite store,
 * as a user runs it), driven by 8 concurrent clients on loopback with keep-alive connections, as the real agents
 * are: `POST /api/logs/` (the open endpoint, most of the agents' calls) and `POST /api/tf-slices/` (a slice: read
 * the slice and the id counter, append both with expected revisions). Each 2xx answer means the write is committed
 * and fsynced. Reports writes/s and p50/p99 latency per endpoint.
 *
 * Goal (the issue's): at least 2,000 writes/s with p99 below 50 ms on this machine.
 *
 * Also measured in the same run, to read the figures on a shared machine: the load average, and the same clients
 * against a bare Node HTTP server in a process of its own that answers each POST at once (parse the JSON, answer
 * 201; no store): the ceiling of Node's HTTP on loopback on this machine at this moment. `of_bare` is the write
 * API's writes/s as a share of it.
 * Each endpoint is measured after a warm-up of its own (`--warm-up N` requests, default 2000): a monitor serving
 * agents runs for hours, and the first thousands of requests of a fresh process run code V8 has not optimised yet
 * (with 200, the endpoint measured first, logs, paid ~0.2 ms/write more monitor CPU than the same endpoint after 4,000;
 * `--warm-up 200` shows that figure).
 * Options: --clients N (default 8), --requests N per endpoint (default 4000), --quick (1000), --warm-up N, --json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const CLIENTS = Number(flag('--clients') ?? 8);
const REQUESTS = Number(flag('--requests') ?? (quick ? 1000 : 4000));
const WARM_UP = Number(flag('--warm-up') ?? 2000);
const JSON_OUT = args.includes('--json');
const TOKEN = 'bench-token-0123456789';
// SWF_BENCH_CLI: another build's CLI (e.g. the commit before a change), to compare two builds in one run.
const CLI = process.env.SWF_BENCH_CLI ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'swf-bench-writes-'));
const log = (s: string): void => {
  if (!JSON_OUT) process.stderr.write(`${s}\n`);
};

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });

function post(base: string, path: string, body: unknown, auth: boolean): Promise<number> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(text),
          ...(auth ? { Authorization: `Token ${TOKEN}` } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** A Node HTTP server that answers every POST with 201 and its JSON body back: no store, no validation. */
const BARE_SERVER = `
const { createServer } = require('node:http');
const srv = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const text = JSON.stringify({ id: 1, ...JSON.parse(Buffer.concat(chunks).toString('utf8')) });
    res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  });
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ url: 'http://127.0.0.1:' + srv.address().port }) + '\\n'));
`;

async function startChild(argv: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`${argv[0]} exited (${code}) before it listened`)));
  });
  return { url, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function startMonitor(): Promise<{ url: string; child: ChildProcess }> {
  // SWF_BENCH_NODE_ARGS: extra node flags for the monitor process (e.g. --cpu-prof), to see where its time goes.
  const nodeArgs = (process.env.SWF_BENCH_NODE_ARGS ?? '').split(' ').filter((x) => x !== '');
  const started = await startChild(
    [...nodeArgs, CLI, 'monitor', '--port', '0', '--json', '--store', `sqlite:${join(work, 'swf.db')}`],
    { ...process.env, SWF_API_TOKEN: TOKEN },
  );
  monitorPid = started.child.pid;
  return started;
}

interface Figures {
  endpoint: string;
  requests: number;
  writes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** CPU time of the monitor process per write (Linux): what the machine's load does not change much. */
  monitor_cpu_ms_per_write: number | null;
}

let monitorPid: number | undefined;

/** user + system CPU milliseconds of the monitor process so far (Linux /proc), or undefined elsewhere. */
function monitorCpuMs(): number | undefined {
  if (monitorPid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${monitorPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the whole line)
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

async function drive(
  name: string,
  n: number,
  send: (i: number) => Promise<number>,
  expected: number,
): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const cpu0 = monitorCpuMs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = performance.now();
        const status = await send(i);
        latencies.push(performance.now() - s);
        if (status !== expected) throw new Error(`${name} #${i}: status ${status}, expected ${expected}`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = monitorCpuMs();
  return {
    endpoint: name,
    requests: n,
    writes_per_s: Math.round(n / seconds),
    p50_ms: Number(percentile(latencies, 50).toFixed(2)),
    p99_ms: Number(percentile(latencies, 99).toFixed(2)),
    monitor_cpu_ms_per_write: cpu0 !== undefined && cpu1 !== undefined ? Number(((cpu1 - cpu0) / n).toFixed(3)) : null,
  };
}

const logBody = (i: number) => ({
  app_name: 'base_agent',
  instance_name: `bench-agent-${i % CLIENTS}`,
  timestamp: '2026-12-07T15:21:15.171767',
  level: 20,
  levelname: 'INFO',
  message: `Processed slice ${i} of the bench run`,
  module: 'bench',
  funcname: 'drive',
  lineno: 1,
  process: 1,
  thread: 1,
  extra_data: { execution_id: 'bench-0001', run_id: '100010' },
});

/** The same clients against the bare server: Node's HTTP ceiling on this machine now (see the header). */
async function bare(): Promise<Figures> {
  const { url, child } = await startChild(['-e', BARE_SERVER], process.env);
  try {
    await drive('warm-up', 200, (i) => post(url, '/api/logs/', logBody(i), false), 201);
    const figures = await drive(
      'bare Node HTTP server',
      REQUESTS,
      (i) => post(url, '/api/logs/', logBody(i), false),
      201,
    );
    return { ...figures, monitor_cpu_ms_per_write: null };
  } finally {
    await stopChild(child);
  }
}

/**
 * fdatasync of a 4 KiB append to a file in the store's folder, as a commit's WAL frames are synced: its median, in
 * ms, now. A 2xx waits for one, so 8 clients that each wait for their answer get at most 8 / fsync writes per
 * second even when each fsync covers all eight.
 */
async function fsyncMs(rounds = 100): Promise<number> {
  const fh = await open(join(work, 'fsync-probe'), 'a');
  const times: number[] = [];
  try {
    const page = Buffer.alloc(4096, 1);
    for (let i = 0; i < rounds; i++) {
      await fh.write(page);
      const t = performance.now();
      await fh.datasync();
      times.push(performance.now() - t);
    }
  } finally {
    await fh.close();
  }
  return Number(percentile(times, 50).toFixed(2));
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const fsync = await fsyncMs();
  const ceiling = await bare();
  const { url, child } = await startMonitor();
  try {
    log(
      `swf monitor at ${url}; ${CLIENTS} clients, ${REQUESTS} requests per endpoint after ${WARM_UP} to warm up; load average ${load0.map((x) => x.toFixed(1)).join(' ')}`,
    );
    // warm up: connections, statements, the first pages of the database, the optimised code of the endpoint
    await drive('warm-up', WARM_UP, (i) => post(url, '/api/logs/', logBody(i), false), 201);
    const logs = await drive('POST /api/logs/', REQUESTS, (i) => post(url, '/api/logs/', logBody(i), false), 201);
    log(
      `${logs.endpoint}: ${logs.writes_per_s} writes/s, p50 ${logs.p50_ms} ms, p99 ${logs.p99_ms} ms, monitor CPU ${logs.monitor_cpu_ms_per_write} ms/write`,
    );

    const run = await post(url, '/api/runs/', { run_number: 100010, start_time: '2026-12-07T15:21:34.588221' }, true);
    const stf = await post(url, '/api/stf-files/', { run: 1, stf_filename: 'swf.100010.000001.stf' }, true);
    const samples = await Promise.all(
      Array.from({ length: CLIENTS }, (_, c) =>
        post(
          url,
          '/api/fastmon-files/',
          {
            stf_file: 'swf.100010.000001.stf',
            tf_filename: `swf.100010.000001_tf_${String(c + 1).padStart(3, '0')}.tf`,
          },
          true,
        ),
      ),
    );
    if (run !== 201 || stf !== 201 || samples.some((s) => s !== 201))
      throw new Error('could not register the run, STF and samples');
    const slice = (i: number) => {
      const sample = String((i % CLIENTS) + 1).padStart(3, '0');
      const id = Math.floor(i / CLIENTS);
      return {
        slice_id: id,
        tf_first: 2 * id,
        tf_last: 2 * id + 1,
        tf_count: 2,
        tf_filename: `swf.100010.000001_tf_${sample}_slice_${String(id).padStart(3, '0')}.tf`,
        stf_filename: 'swf.100010.000001.stf',
        run_number: '100010',
        status: 'queued',
        retries: 0,
        metadata: { execution_id: 'bench-0001', created_by: 'bench' },
      };
    };
    // the warm-up's slices come after the measured ones' (their own slice ids)
    await drive('warm-up', WARM_UP, (i) => post(url, '/api/tf-slices/', slice(REQUESTS + i), true), 201);
    const slices = await drive(
      'POST /api/tf-slices/',
      REQUESTS,
      (i) => post(url, '/api/tf-slices/', slice(i), true),
      201,
    );
    log(
      `${slices.endpoint}: ${slices.writes_per_s} writes/s, p50 ${slices.p50_ms} ms, p99 ${slices.p99_ms} ms, monitor CPU ${slices.monitor_cpu_ms_per_write} ms/write`,
    );
    const load1 = loadavg();
    const share = (f: Figures): number => Number((f.writes_per_s / ceiling.writes_per_s).toFixed(2));
    const results = [logs, slices].map((f) => ({ ...f, of_bare: share(f) }));
    log(
      `${ceiling.endpoint} (same clients, same run): ${ceiling.writes_per_s} answers/s, p50 ${ceiling.p50_ms} ms, p99 ${ceiling.p99_ms} ms`,
    );
    log('');
    log('| endpoint | writes/s | p50 ms | p99 ms | share of bare HTTP | monitor CPU ms/write |');
    log('|---|---|---|---|---|---|');
    for (const f of results)
      log(
        `| ${f.endpoint} | ${f.writes_per_s} | ${f.p50_ms} | ${f.p99_ms} | ${f.of_bare} | ${f.monitor_cpu_ms_per_write} |`,
      );
    log(`| ${ceiling.endpoint} | ${ceiling.writes_per_s} | ${ceiling.p50_ms} | ${ceiling.p99_ms} | 1 | |`);
    log(
      `fdatasync of a 4 KiB append here: median ${fsync} ms, so ${CLIENTS} clients waiting for durable answers get at most ${Math.round((CLIENTS * 1000) / fsync)} writes/s`,
    );
    log(
      `load average: ${load0.map((x) => x.toFixed(2)).join(' ')} before, ${load1.map((x) => x.toFixed(2)).join(' ')} after; goal ≥ 2000 writes/s, p99 < 50 ms`,
    );
    const figures = {
      clients: CLIENTS,
      warm_up: WARM_UP,
      results,
      bare_http: ceiling,
      fsync_median_ms: fsync,
      fsync_bound_writes_per_s: Math.round((CLIENTS * 1000) / fsync),
      load_average: { before: load0, after: load1 },
      goal: { writes_per_s: 2000, p99_ms: 50 },
    };
    if (JSON_OUT) process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    agent.destroy();
    await stopChild(child);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:monitor-writes failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
