/**
 * The operator's MCP tools at /mcp, driven by the SDK's own client: system state, start a run, stop an execution,
 * a what-if replay; the testbed's swf_ names beside ours; the acting tools refused without the write token.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClosableMcpActions, mcpActions } from '../../src/cli/mcpActions.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { MCP_TOOL_NAMES } from '../../src/monitor/mcp.js';
import { OPERATOR_TOOL_NAMES } from '../../src/monitor/mcpOperator.js';
import { type Monitor, startMonitor } from '../../src/monitor/server.js';
import { openViews, type Views } from '../../src/projections/views.js';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';

const TOKEN = 'operator-token-0123456789';
/** A small run: 2 STFs, 2 samples each, 3 slices a sample, 3 workers. */
const SMALL = ['fast_processing.tf_files_per_stf=2', 'fast_processing.slices_per_sample=3'];

let dir: string;
let store: EventStore;
let views: Views;
let monitor: Monitor;
let actions: ClosableMcpActions;
let fixture: RunFixture;
let operator: Client;
let visitor: Client;

async function connect(headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'swf-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${monitor.url}/mcp`), { requestInit: { headers } }));
  return client;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swf-mcp-operator-'));
  store = await openEventStore(`sqlite:${join(dir, 'swf.db')}`);
  fixture = await appendRunFixture(store, { executionId: 'fast_processing-alice-0001' });
  views = await openViews(store, { cwd: dir });
  views.follow();
  const logger = pino({ level: 'silent' });
  actions = mcpActions(
    store,
    { stdout: process.stdout, stderr: process.stderr, env: { USER: 'tester' }, cwd: dir },
    logger,
  );
  monitor = await startMonitor({
    store,
    views,
    host: '127.0.0.1',
    port: 0,
    writes: { token: TOKEN, namespace: 'swf-es' },
    mcpActions: actions,
  });
  operator = await connect({ Authorization: `Token ${TOKEN}` });
  visitor = await connect({});
}, 60_000);

afterAll(async () => {
  await operator?.close();
  await visitor?.close();
  await actions?.close();
  await monitor?.close();
  await views?.close();
  await store?.close();
});

async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  if (r.isError) throw new Error(text);
  return JSON.parse(text) as Record<string, unknown>;
}

async function toolError(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, JSON.stringify(r.content)).toBe(true);
  return (r.content[0] as { text: string }).text;
}

describe('the operator’s MCP tools', () => {
  it('offers every tool under our name and the testbed’s swf_ name; only the acting ones are not read-only', async () => {
    const { tools } = await visitor.listTools();
    const names = tools.map((t) => t.name);
    expect(names.sort()).toEqual([...MCP_TOOL_NAMES, ...MCP_TOOL_NAMES.map((n) => `swf_${n}`)].sort());
    for (const n of ['swf_get_workflow_monitor', 'swf_list_messages', ...OPERATOR_TOOL_NAMES.map((o) => `swf_${o}`)])
      expect(names).toContain(n);
    const acting = new Set(['start_workflow', 'stop_workflow']);
    for (const t of tools) expect(t.annotations?.readOnlyHint, t.name).toBe(!acting.has(t.name.replace(/^swf_/, '')));
    // the same handler: the testbed's name answers as ours does
    const ours = await call(visitor, 'get_run_state', { run_number: fixture.runNumber });
    expect(await call(visitor, 'swf_get_run_state', { run_number: fixture.runNumber })).toEqual(ours);
  });

  it('gives instructions whose examples are ids and names of this store', async () => {
    const text = visitor.getInstructions() ?? '';
    expect(text).toContain(`"${fixture.executionId}"`);
    expect(text).toContain(`run_number=${fixture.runNumber}`);
    const exec = await call(visitor, 'get_workflow_execution', { execution_id: fixture.executionId });
    expect(text).toContain(`workflow "${String(exec.workflow_name)}"`);
    expect(text).not.toContain('fast_processing_default-');
  });

  it('get_system_state: agents by health, executions running, runs in progress', async () => {
    const s = await call(visitor, 'swf_get_system_state');
    const agents = s.agents as { total: number; healthy: number; stale: number; exited: number; items: unknown[] };
    expect(agents.total).toBe(fixture.agents.length);
    expect(agents.healthy + agents.stale + agents.exited).toBe(agents.total);
    expect(agents.items).toHaveLength(agents.total);
    // the fixture's run is finished: nothing in progress, nothing running
    expect(s).toMatchObject({ executions_running: { total: 0 }, runs_in_progress: { total: 0 } });
    expect(s.log_time).toBe(fixture.endTime);
    expect(await toolError(visitor, 'get_system_state', { colour: 'red' })).toMatch(/colour/);
  });

  it('refuses the acting tools without the write token, saying how to give it', async () => {
    for (const [name, args] of [
      ['start_workflow', { stf_count: 1 }],
      ['swf_stop_workflow', { execution_id: fixture.executionId }],
      ['what_if_replay', { run_number: fixture.runNumber, worker_failure_rate: 0 }],
    ] as const) {
      expect(await toolError(visitor, name, args)).toMatch(/Authorization: Token <token>/);
    }
    const wrong = await connect({ Authorization: 'Token not-the-token' });
    expect(await toolError(wrong, 'start_workflow', { stf_count: 1 })).toMatch(/Invalid token/);
    await wrong.close();
  });

  it('start_workflow runs with the parameters given, then what_if_replay compares it with a failure rate', async () => {
    const started = await call(operator, 'start_workflow', { stf_count: 2, target_worker_count: 3, set: SMALL });
    expect(started).toMatchObject({
      execution_id: expect.stringMatching(/^fast_processing-tester-\d{4}$/),
      run_number: expect.any(Number),
      mode: 'virtual',
    });
    const run = started.run_number as number;
    await expect
      .poll(async () => (await call(visitor, 'get_run_state', { run_number: run })).finished, { timeout: 60_000 })
      .toBe(true);
    const state = await call(visitor, 'get_run_state', { run_number: run });
    expect(state).toMatchObject({ slices_created: 2 * 2 * 3, slices_completed: 12, target_worker_count: 3 });
    const exec = await call(visitor, 'get_workflow_execution', { execution_id: started.execution_id });
    expect(exec).toMatchObject({ parameter_values: { fast_processing: { stf_count: 2, slices_per_sample: 3 } } });

    const w = await call(operator, 'what_if_replay', { run_number: run, worker_failure_rate: 0.5 });
    expect(w).toMatchObject({
      run_number: run,
      recorded: { slices_created: 12, retries: 0 },
      what_if: { slices_created: 12 },
      overrides: [
        expect.objectContaining({ key: 'fast_processing.worker_failure_rate', what_if: 0.5, effective: true }),
      ],
    });
    expect((w.what_if as { retries: number }).retries).toBeGreaterThan(0);
    expect(await toolError(operator, 'what_if_replay', { run_number: run })).toMatch(/at least one changed parameter/);
    expect(await toolError(operator, 'start_workflow', { set: ['fast_processing.stf_cnt=2'] })).toMatch(/stf_cnt/);
  }, 120_000);

  it('stop_workflow stops a run in progress; get_system_state shows it running first', async () => {
    const started = await call(operator, 'swf_start_workflow', {
      stf_count: 0,
      physics_period_count: 0,
      speed: 200,
      set: [...SMALL, 'fast_processing.stf_sampling_rate=0.1'],
    });
    expect(started.mode).toBe('realtime');
    const id = started.execution_id as string;
    await expect
      .poll(
        async () =>
          (
            (await call(visitor, 'get_system_state')).executions_running as { items: { execution_id: string }[] }
          ).items.map((e) => e.execution_id),
        { timeout: 30_000 },
      )
      .toContain(id);
    expect(await call(operator, 'stop_workflow', { execution_id: id })).toMatchObject({
      execution_id: id,
      outcome: 'requested',
    });
    await expect
      .poll(async () => (await call(visitor, 'get_workflow_execution', { execution_id: id })).status, {
        timeout: 60_000,
      })
      .toBe('terminated');
    expect(await toolError(operator, 'stop_workflow', { execution_id: id })).toMatch(/already ended/);
    expect(await toolError(operator, 'stop_workflow', { execution_id: 'nope' })).toMatch(/unknown execution 'nope'/);
  }, 120_000);
});
