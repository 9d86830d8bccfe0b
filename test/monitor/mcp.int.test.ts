/** The MCP tools at /mcp (streamable HTTP), driven by the SDK's own client. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCP_TOOL_NAMES } from '../../src/monitor/mcp.js';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';
import { startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;
let run: RunFixture;
let client: Client;

beforeAll(async () => {
  m = await startTestMonitor();
  run = await appendRunFixture(m.store);
  client = new Client({ name: 'swf-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${m.url}/mcp`)));
});
afterAll(async () => {
  await client.close();
  await m.close();
});

async function call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  if (r.isError) throw new Error(text);
  return JSON.parse(text) as Record<string, unknown>;
}

async function toolError(name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, JSON.stringify(r.content)).toBe(true);
  return (r.content[0] as { text: string }).text;
}

describe('MCP over streamable HTTP', () => {
  it('lists the testbed monitor’s tools, each with described parameters', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [...MCP_TOOL_NAMES, ...MCP_TOOL_NAMES.map((n) => `swf_${n}`)].sort(),
    );
    for (const t of tools) {
      expect(t.description, t.name).toBeTruthy();
      // start and stop act (mcpOperator.int.test.ts); every other tool only reads
      expect(t.annotations?.readOnlyHint, t.name).toBe(!/^(swf_)?(start|stop)_workflow$/.test(t.name));
      for (const [param, schema] of Object.entries(t.inputSchema.properties ?? {})) {
        expect((schema as { description?: string }).description, `${t.name}.${param}`).toBeTruthy();
      }
    }
  });

  it('get_workflow_monitor: status, phase, lifecycle events, counts and errors of an execution', async () => {
    const r = await call('get_workflow_monitor', { execution_id: run.executionId });
    expect(r).toMatchObject({
      execution_id: run.executionId,
      status: 'completed',
      phase: 'completed',
      run_id: '100010',
      stf_count: 3,
      monitor_url: `${m.url}/#/executions/${run.executionId}`,
    });
    expect((r.runs as Record<string, unknown>[])[0]).toMatchObject({ slices_failed: 1, slice_counts: { failed: 1 } });
  });

  it('list_messages(execution_id) shows the whole run, paged with total_count and has_more', async () => {
    const first = await call('list_messages', { execution_id: run.executionId, limit: 50 });
    expect(first.has_more).toBe(true);
    const total = first.total_count as number;
    const all: { message_type: string; position: number }[] = [];
    for (let offset = 0; offset < total; offset += 200) {
      const page = await call('list_messages', { execution_id: run.executionId, offset });
      all.push(...(page.items as { message_type: string; position: number }[]));
    }
    expect(all).toHaveLength(total);
    expect(new Set(all.map((x) => x.message_type))).toEqual(
      new Set([
        'run_imminent',
        'run_imminent_worker',
        'start_run',
        'stf_gen',
        'stf_ready',
        'tf_file_registered',
        'slice',
        'slice_result',
        'end_run',
      ]),
    );
    expect((first.items as Record<string, unknown>[])[0]).toMatchObject({
      payload_summary: expect.stringMatching(/^\{"msg_type":"[a-z_]+"/),
      sender_agent: expect.any(String),
    });
  });

  it('list_tf_slices(run_number, status), get_tf_slice, get_run_state, list_stf_files, list_runs, list_logs, list_agents', async () => {
    const failed = await call('list_tf_slices', { run_number: run.runNumber, status: 'failed' });
    expect(failed).toMatchObject({
      total_count: 1,
      has_more: false,
      items: [expect.objectContaining({ tf_filename: run.incidents!.failedForGood, retries: 3 })],
    });
    const bySample = await call('get_tf_slice', {
      fastmon_file: run.incidents!.retried.replace(/_slice_\d{3}\.tf$/, '.tf'),
      slice_id: Number(/_slice_(\d{3})\.tf$/.exec(run.incidents!.retried)![1]),
    });
    expect(bySample).toMatchObject({
      tf_filename: run.incidents!.retried,
      retries: 1,
      attempt: 2,
      last_error: 'payload failed',
    });
    expect(await call('get_run_state', { run_number: run.runNumber })).toMatchObject({
      phase: 'completed',
      slices_created: run.expected.slices_created,
    });
    expect(await call('list_stf_files', { run_number: run.runNumber })).toMatchObject({ total_count: 3 });
    expect(await call('list_runs', {})).toMatchObject({
      total_count: 1,
      items: [expect.objectContaining({ run_number: 100010, phase: 'completed' })],
    });
    expect(await call('list_logs', { execution_id: run.executionId, level: 'WARNING' })).toMatchObject({
      total_count: 2,
    });
    expect(await call('list_workflow_executions', { currently_running: false })).toMatchObject({ total_count: 1 });
    expect(await call('get_workflow_execution', { execution_id: run.executionId })).toMatchObject({
      parameter_values: { fast_processing: { max_slice_retries: 3 } },
    });
    const agents = await call('list_agents', {});
    expect(agents.total_count).toBe(run.agents.length);
  });

  it('applies a default time window before the log’s latest time unless a run or execution filter lifts it', async () => {
    const windowed = await call('list_messages', {});
    expect(windowed.window_start).toBe(new Date(Date.parse(run.endTime) - 3_600_000).toISOString());
    const old = await call('list_stf_files', { end_time: '2000-01-01T00:00:00Z' });
    expect(old.total_count).toBe(0);
    const lifted = await call('list_tf_slices', { run_number: run.runNumber, limit: 1 });
    expect(lifted.window_start).toBeUndefined();
  });

  it('answers bad arguments with a tool error that says what was wrong', async () => {
    expect(await toolError('get_run_state', { run_number: 'abc' })).toMatch(/run_number/);
    expect(await toolError('get_run_state', { run_number: 999 })).toMatch(/no RunState for run 999/);
    expect(await toolError('list_tf_slices', { status: 'done' })).toMatch(/status/);
    expect(await toolError('list_tf_slices', { colour: 'red' })).toMatch(/colour/);
    expect(await toolError('list_messages', { start_time: 'yesterday' })).toMatch(
      /start_time must be an ISO-8601 time/,
    );
    expect(await toolError('list_logs', { level: 'LOUD' })).toMatch(/level must be a level name/);
    expect(await toolError('get_workflow_monitor', { execution_id: 'nope' })).toMatch(/no workflow execution 'nope'/);
    expect(await toolError('get_tf_slice', {})).toMatch(/name the slice/);
    expect(await toolError('list_tf_slices', { limit: 201 })).toMatch(/limit/);
  });
});
