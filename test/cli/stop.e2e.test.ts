/**
 * `swf stop` as a user runs it against `swf run` processes: a running execution is asked to stop and its DAQ
 * ends it; one whose process was SIGKILLed is terminated by `swf stop` itself, with the reason.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';

const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'swf-stop-e2e-'));
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWF_')));
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does)`);
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function swf(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A realtime `swf run` that takes minutes, in the background. */
function startRun(store: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [CLI, 'run', '--realtime', '--speed', '20', '--store', store, '--set', 'fast_processing.stf_count=500'],
    { env: cleanEnv, stdio: 'ignore' },
  );
  children.push(child);
  return { child, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

async function logOf(file: string): Promise<StoredEvent[]> {
  const store = await openEventStore(`sqlite:${file}`);
  try {
    const all: StoredEvent[] = [];
    for await (const e of store.readAll()) all.push(e);
    return all;
  } finally {
    await store.close();
  }
}

/** Waits until the run has sent STFs; returns its execution id. */
async function runningExecution(file: string): Promise<string> {
  await expect
    .poll(async () => (existsSync(file) ? (await logOf(file)).some((e) => e.type === 'stf_gen') : false), {
      timeout: 60_000,
      interval: 200,
    })
    .toBe(true);
  const started = (await logOf(file)).find((e) => e.type === 'WorkflowExecutionStarted')!;
  return (started.data as { execution_id: string }).execution_id;
}

const finishedOf = (log: StoredEvent[]) =>
  log.filter((e) => e.type === 'WorkflowExecutionFinished').map((e) => e.data as { status: string; reason?: string });

describe('swf stop', () => {
  it('asks a running execution to stop; its DAQ ends it', async () => {
    const file = join(dir, 'live.db');
    const { exited } = startRun(`sqlite:${file}`);
    const id = await runningExecution(file);
    const r = await swf('stop', id, '--store', `sqlite:${file}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`stop requested for ${id}\n`);
    expect(await exited).toBe(0);
    expect(finishedOf(await logOf(file))).toEqual([expect.objectContaining({ status: 'terminated' })]);
  });

  it('terminates an execution whose run process was SIGKILLed, with the reason', async () => {
    const file = join(dir, 'killed.db');
    const { child, exited } = startRun(`sqlite:${file}`);
    const id = await runningExecution(file);
    child.kill('SIGKILL');
    await exited;
    // judged by the wall clock: once a second has passed since the last event, --gone-after 1 calls it gone
    const lastAt = Math.max(...(await logOf(file)).map((e) => e.recordedAt.getTime()));
    await expect.poll(() => Date.now() - lastAt, { timeout: 10_000, interval: 100 }).toBeGreaterThan(1_200);
    const r = await swf('stop', id, '--gone-after', '1', '--store', `sqlite:${file}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${id} terminated: none of its agents is running`));
    const log = await logOf(file);
    expect(finishedOf(log)).toEqual([
      expect.objectContaining({ status: 'terminated', reason: expect.stringMatching(/no agent is running it/) }),
    ]);
    expect(log.filter((e) => e.type === 'StopRequested')).toHaveLength(1);

    const again = await swf('stop', id, '--store', `sqlite:${file}`);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/already ended \(terminated\)/);
  });

  it('refuses an unknown execution (exit 3) and a bad --gone-after (exit 2)', async () => {
    const file = join(dir, 'killed.db');
    const unknown = await swf('stop', 'fast_processing-nobody-0001', '--store', `sqlite:${file}`);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/unknown execution 'fast_processing-nobody-0001'/);
    const bad = await swf('stop', 'x', '--gone-after', 'soon', '--store', `sqlite:${file}`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--gone-after must be a number of seconds/);
  });
});
