/**
 * The read side as a user runs it: `swf run` in one process, `swf monitor` following it live in another, then
 * `swf runs`, `swf projections rebuild` (rows identical to the live ones) and `swf mcp` over stdio with the SDK's
 * client. Uses the built CLI (`npm test` builds first).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import { parseEvent } from '../../src/messages/index.js';
import { openViewsDb } from '../../src/projections/db.js';
import { fastParse } from '../../src/projections/projection.js';
import { type Child, startNode } from '../helpers/spawn.js';
import { dump } from '../projections/helpers.js';
import { get } from './helpers.js';

const exec = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const env = { ...process.env, SWF_STORE: '', SWF_LOG_LEVEL: 'warn' };

async function swf(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e: unknown) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'swf-cli-monitor-'));
const storeUrl = `sqlite:${join(dir, 'swf.db')}`;
let monitor: Child;
let url: string;
let summary: Record<string, unknown>;

beforeAll(async () => {
  monitor = startNode(CLI, ['monitor', '--store', storeUrl, '--port', '0', '--json'], { SWF_STORE: '' });
  const line = await monitor.waitFor((l) => typeof l.url === 'string');
  url = line.url as string;
  const run = await swf(
    'run',
    '--store',
    storeUrl,
    '--json',
    '--set',
    'fast_processing.stf_count=4',
    '--set',
    'fast_processing.worker_failure_rate=0.2',
  );
  expect(run.code, run.stderr).toBe(0);
  summary = JSON.parse(run.stdout) as Record<string, unknown>;
}, 120_000);

afterAll(async () => {
  monitor.proc.kill('SIGTERM');
  await monitor.exited;
});

describe('swf monitor, runs, projections, mcp on a real run', () => {
  it('the monitor, following live in its own process, has the finished run', async () => {
    const state = await get(url, `/api/run-states/${summary.run_number as number}/`);
    expect(state.status).toBe(200);
    const slices = summary.slices as { created: number; completed: number; failed: number; retried: number };
    expect(state.json).toMatchObject({
      phase: 'completed',
      finished: true,
      slices_created: slices.created,
      slices_completed: slices.completed,
      slices_failed: slices.failed,
      slices_retried: slices.retried,
      slices_queued: 0,
      slices_processing: 0,
      stf_files: 4,
    });
    expect(slices.retried).toBeGreaterThan(0);
  });

  it('the projections’ hand check of the hottest events agrees with the schemas on what the agents wrote', async () => {
    const store = await openEventStore(storeUrl);
    let checked = 0;
    for await (const e of store.readAll()) {
      const fast = fastParse(e);
      if (fast === undefined) continue;
      expect(fast).toEqual(parseEvent(e));
      checked++;
    }
    await store.close();
    expect(checked).toBeGreaterThan(1000);
  });

  it('swf runs --json lists the execution and its run with phase and counts', async () => {
    const r = await swf('runs', '--store', storeUrl, '--json');
    expect(r.code, r.stderr).toBe(0);
    const { executions } = JSON.parse(r.stdout) as { executions: Record<string, unknown>[] };
    expect(executions).toEqual([
      expect.objectContaining({
        execution_id: summary.execution_id,
        status: 'completed',
        runs: [
          expect.objectContaining({ run_number: summary.run_number, phase: 'completed', finished: true, stf_files: 4 }),
        ],
      }),
    ]);
    const text = await swf('runs', '--store', storeUrl);
    expect(text.stdout).toContain(`run ${summary.run_number as number}  completed (finished)`);
  });

  it('swf projections rebuild gives rows identical to the live ones', async () => {
    const rebuilt = join(dir, 'rebuilt.views.db');
    const r = await swf('projections', 'rebuild', '--store', storeUrl, '--views', rebuilt, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ views: rebuilt, events: expect.any(Number) });
    const liveDb = openViewsDb(join(dir, 'swf.views.db'));
    const rebuiltDb = openViewsDb(rebuilt);
    expect(dump(rebuiltDb)).toEqual(dump(liveDb));
    liveDb.close();
    rebuiltDb.close();
    const again = await swf('projections', 'rebuild', '--store', storeUrl);
    expect(again.stdout).toMatch(/^rebuilt .*swf\.views\.db from \d+ events/);
    // The monitor keeps answering (and agrees) after a rebuild of its own file under it.
    expect((await get(url, `/api/runs/${summary.run_number as number}/`)).json).toMatchObject({ phase: 'completed' });
    const status = await swf('projections', 'status', '--store', storeUrl, '--json');
    expect(
      (JSON.parse(status.stdout) as { projections: { behind: number }[] }).projections.every((p) => p.behind === 0),
    ).toBe(true);
  });

  it('swf mcp serves the tools over stdio to the SDK client', async () => {
    const client = new Client({ name: 'swf-e2e', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'mcp', '--store', storeUrl],
        env: { ...env },
        stderr: 'pipe',
      }),
    );
    const r = (await client.callTool({
      name: 'get_run_state',
      arguments: { run_number: summary.run_number },
    })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(JSON.parse((r.content[0] as { text: string }).text)).toMatchObject({ phase: 'completed', finished: true });
    const bad = (await client.callTool({ name: 'get_run_state', arguments: { run_number: -1 } })) as CallToolResult;
    expect(bad.isError).toBe(true);
    await client.close();
  });

  it('refuses a bad port with one line and exit code 2', async () => {
    const r = await swf('monitor', '--store', storeUrl, '--port', '99999');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      "swf monitor: --port must be a port number (0-65535; 0 picks a free one), got '99999'",
    ]);
  });
});
