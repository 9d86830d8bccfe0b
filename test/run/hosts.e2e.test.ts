/**
 * The workflow spread over several hosts, made on this machine with network namespaces: PostgreSQL listens on
 * one (its own server, started by the test with initdb/pg_ctl), the agents run on a second, and two worker pools
 * on a third and a fourth; they meet over a bridge, with private addresses that exist only inside the namespaces.
 * Everything is created and removed by the test. Then the same with one worker host's link cut mid-run.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/spawn.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const CLI = 'dist/src/cli/main.js';
const SPEED = '100';
const SETS = [
  'fast_processing.stf_count=4',
  'fast_processing.slice_processing_time=3',
  'fast_processing.slice_lease_factor=20',
  'fast_processing.target_worker_count=8',
  'daq_state_machine.no_beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_end_delay=1',
].flatMap((s) => ['--set', s]);

const id = `swf${process.pid % 100000}`;
const ns = { bridge: `${id}-br`, db: `${id}-db`, agents: `${id}-ag`, w1: `${id}-w1`, w2: `${id}-w2` };
const address = { db: '10.217.0.1', agents: '10.217.0.2', w1: '10.217.0.3', w2: '10.217.0.4' };
type Host = keyof typeof address;

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'making network namespaces needs root (run the tests as root, as CI does)';
  if (!existsSync(`${PG_BIN}/initdb`)) return `no PostgreSQL server binaries in ${PG_BIN} (apt-get install postgresql)`;
  try {
    execFileSync('ip', ['netns', 'add', `${id}-probe`], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', `${id}-probe`], { stdio: 'pipe' });
  } catch (e: unknown) {
    return `cannot make a network namespace here (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
  }
  return undefined;
}
const skipReason = whyNot();
if (skipReason) console.warn(`[swf-es] skipped the multi-host test: ${skipReason}`);

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (n: string, cmd: string, args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', n, cmd, ...args], { stdio: 'pipe' }).toString();

let dataDir = '';
const children: ChildProcess[] = [];

function makeHosts(): void {
  ip('netns', 'add', ns.bridge);
  ip('netns', 'exec', ns.bridge, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  ip('netns', 'exec', ns.bridge, 'ip', 'link', 'set', 'br0', 'up');
  for (const host of Object.keys(address) as Host[]) {
    const n = ns[host];
    ip('netns', 'add', n);
    // Both ends are made inside namespaces: nothing appears in the machine's own network.
    ip('link', 'add', 'eth0', 'netns', n, 'type', 'veth', 'peer', 'name', `p-${host}`, 'netns', ns.bridge);
    ip('netns', 'exec', n, 'ip', 'addr', 'add', `${address[host]}/24`, 'dev', 'eth0');
    ip('netns', 'exec', n, 'ip', 'link', 'set', 'eth0', 'up');
    ip('netns', 'exec', n, 'ip', 'link', 'set', 'lo', 'up');
    ip('netns', 'exec', ns.bridge, 'ip', 'link', 'set', `p-${host}`, 'master', 'br0');
    ip('netns', 'exec', ns.bridge, 'ip', 'link', 'set', `p-${host}`, 'up');
  }
}

function removeHosts(): void {
  for (const n of Object.values(ns)) {
    try {
      ip('netns', 'del', n);
    } catch {
      // not made (an earlier step failed)
    }
  }
}

const asPostgres = (args: string[]): string => inNs(ns.db, 'runuser', ['-u', 'postgres', '--', ...args]);

function startPostgres(): void {
  dataDir = mkdtempSync(join(tmpdir(), 'swf-hosts-pg-'));
  chownSync(dataDir, Number(execFileSync('id', ['-u', 'postgres']).toString()), 0);
  asPostgres([`${PG_BIN}/initdb`, '-D', `${dataDir}/data`, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  // Trust inside the private network only: the namespaces' addresses exist nowhere else.
  asPostgres(['sh', '-c', `printf 'local all all trust\\nhost all all 10.217.0.0/24 trust\\n' > ${dataDir}/hba.conf`]);
  asPostgres([
    `${PG_BIN}/pg_ctl`,
    '-D',
    `${dataDir}/data`,
    '-l',
    `${dataDir}/server.log`,
    '-w',
    '-o',
    `-c listen_addresses=${address.db} -c port=5432 -c unix_socket_directories=${dataDir} -c max_connections=300 ` +
      `-c "hba_file=${dataDir}/hba.conf"`,
    'start',
  ]);
}

function stopPostgres(): void {
  if (!dataDir) return;
  try {
    asPostgres([`${PG_BIN}/pg_ctl`, '-D', `${dataDir}/data`, '-m', 'immediate', 'stop']);
  } catch {
    // not started
  }
  rmSync(dataDir, { recursive: true, force: true });
}

function on(
  host: Host,
  args: string[],
): { proc: ChildProcess; out: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const proc = spawn('ip', ['netns', 'exec', ns[host], process.execPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, USER: 'tester' },
  });
  children.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { proc, out: new Promise((resolve) => proc.on('exit', (code) => resolve({ code, stdout, stderr }))) };
}

interface Facts {
  results: number;
  slices: number;
  doubled: number;
  finished: { slices_created: number; slices_completed: number; slices_failed: number } | null;
  startedByW1: number;
}
async function facts(store: string): Promise<Facts> {
  const r = await on('agents', [fixture('runFacts.mjs'), store]).out;
  if (r.code !== 0) throw new Error(`runFacts failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Facts;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runAcrossHosts(
  database: string,
  cut?: Host,
): Promise<{ summary: { slices: Record<string, number> }; facts: Facts }> {
  asPostgres([`${PG_BIN}/createdb`, '-h', dataDir, '-U', 'postgres', database]);
  const store = `postgres://postgres@${address.db}:5432/${database}`;
  const agents = [
    on('agents', [CLI, 'agent', 'data', '--speed', SPEED, '--store', store]),
    on('agents', [CLI, 'agent', 'fastmon', '--speed', SPEED, '--store', store]),
    on('agents', [CLI, 'agent', 'fast-processing', '--speed', SPEED, '--store', store]),
  ];
  const w1 = on('w1', [CLI, 'agent', 'worker', '--workers', '4', '--name', 'w1', '--speed', SPEED, '--store', store]);
  const w2 = on('w2', [CLI, 'agent', 'worker', '--workers', '4', '--name', 'w2', '--speed', SPEED, '--store', store]);
  // No wait for the agents: one that comes up after the run began takes part in it (it starts at the oldest
  // unfinished execution of its namespace), and the worker pools join whenever they start.
  const daq = on('agents', [CLI, 'run', '--daq-only', '--json', '--speed', SPEED, '--store', store, ...SETS]);
  if (cut) {
    const deadline = Date.now() + 60_000;
    while ((await facts(store)).results < 60 && Date.now() < deadline) await sleep(200);
    ip('netns', 'exec', ns[cut], 'ip', 'link', 'set', 'eth0', 'down');
  }
  const r = await daq.out;
  expect(r.code, r.stderr).toBe(0);
  for (const a of [...agents, w1, w2]) a.proc.kill(cut && (a === w1 || a === w2) ? 'SIGKILL' : 'SIGTERM');
  await Promise.all([...agents, w1, w2].map((a) => a.out));
  if (cut) ip('netns', 'exec', ns[cut], 'ip', 'link', 'set', 'eth0', 'up');
  return { summary: JSON.parse(r.stdout) as { slices: Record<string, number> }, facts: await facts(store) };
}

describe.skipIf(skipReason !== undefined)('the workflow on several hosts (network namespaces)', () => {
  beforeAll(() => {
    removeHosts();
    makeHosts();
    startPostgres();
  }, 60_000);
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    stopPostgres();
    removeHosts();
  });

  it('agents on one host and two worker pools on two others finish the run with the right counts', async () => {
    const { summary, facts: f } = await runAcrossHosts('run_whole');
    expect(summary.slices).toEqual({ created: 420, completed: 420, failed: 0, retried: 0 });
    expect(f.slices).toBe(420);
    expect(f.doubled).toBe(0);
    expect(f.finished).toMatchObject({ slices_created: 420, slices_completed: 420, slices_failed: 0 });
    expect(f.startedByW1).toBeGreaterThan(0);
  }, 240_000);

  it("with one worker host's link cut mid-run, the other pool takes over its leases and finishes; nothing is doubled", async () => {
    const { summary, facts: f } = await runAcrossHosts('run_cut', 'w1');
    expect(summary.slices.created).toBe(420);
    expect(summary.slices.completed! + summary.slices.failed!).toBe(420);
    expect(f.slices).toBe(420);
    expect(f.doubled).toBe(0);
    expect(f.finished!.slices_created).toBe(420);
    expect(f.finished!.slices_completed + f.finished!.slices_failed).toBe(420);
    // w1 was working before its link went down (what it held at the cut may never have reached the log)
    expect(f.startedByW1).toBeGreaterThan(0);
  }, 240_000);
});
