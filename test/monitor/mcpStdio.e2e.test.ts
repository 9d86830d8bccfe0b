/** `swf mcp` over stdio, driven by the SDK's client: the acting tools need SWF_API_TOKEN in its environment. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';

const CLI = 'dist/src/cli/main.js';
const storeUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-mcp-stdio-')), 'swf.db')}`;
const clients: Client[] = [];

async function spawnMcp(extraEnv: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'swf-e2e', version: '1.0.0' });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'SWF_API_TOKEN') env[k] = v;
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp', '--store', storeUrl],
      env: { ...env, SWF_STORE: '', SWF_LOG_LEVEL: 'warn', USER: 'stdio', ...extraEnv },
      stderr: 'pipe',
    }),
  );
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}
const text = (r: CallToolResult): string => (r.content[0] as { text: string }).text;

describe('swf mcp (stdio)', () => {
  it('refuses start_workflow without SWF_API_TOKEN, saying where to set it', async () => {
    const client = await spawnMcp({});
    const r = await call(client, 'swf_start_workflow', { stf_count: 1 });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/set SWF_API_TOKEN .* in swf mcp's environment/);
  }, 60_000);

  it('with SWF_API_TOKEN starts a run and answers about it', async () => {
    const client = await spawnMcp({ SWF_API_TOKEN: 'stdio-token-123456' });
    const r = await call(client, 'start_workflow', {
      stf_count: 1,
      set: ['fast_processing.tf_files_per_stf=1', 'fast_processing.slices_per_sample=2'],
    });
    expect(r.isError, text(r)).toBeFalsy();
    const started = JSON.parse(text(r)) as { execution_id: string; run_number: number };
    expect(started.execution_id).toMatch(/^fast_processing-stdio-\d{4}$/);
    await expect
      .poll(
        async () =>
          (
            JSON.parse(text(await call(client, 'get_run_state', { run_number: started.run_number }))) as {
              finished?: boolean;
            }
          ).finished,
        { timeout: 60_000 },
      )
      .toBe(true);
    const state = JSON.parse(text(await call(client, 'get_system_state', {}))) as {
      runs_in_progress: { total: number };
    };
    expect(state.runs_in_progress.total).toBe(0);
  }, 120_000);
});
