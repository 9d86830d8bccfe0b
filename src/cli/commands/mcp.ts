import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ValidationError } from '../../errors.js';
import { createMcpServer } from '../../monitor/mcp.js';
import type { Command } from '../context.js';
import { makeLogger, parse, STORE_OPTION } from '../context.js';
import { mcpActions } from '../mcpActions.js';
import { apiTokenOf } from './monitor.js';
import { openReadSide, VIEWS_HELP, VIEWS_OPTION } from './projections.js';

const usage = 'swf mcp [--views PATH] [--store URL]';

const options = { ...STORE_OPTION, ...VIEWS_OPTION } as const;

export const mcpCommand: Command = {
  name: 'mcp',
  summary: "serve the monitor's MCP tools over stdio (for an LLM client)",
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nMCP over stdio: stdout carries only the protocol, logs go to stderr. Tools: get_workflow_monitor,\n` +
          'list_workflow_executions, get_workflow_execution, list_runs, get_run_state, list_messages, list_stf_files,\n' +
          'list_tf_slices, get_tf_slice, list_logs, list_agents, get_system_state, start_workflow, stop_workflow,\n' +
          "what_if_replay; each also under the testbed's name (swf_ prefix). Each answer catches up with the log first.\n" +
          "start_workflow, stop_workflow and what_if_replay act: they need SWF_API_TOKEN (the REST API's write token)\n" +
          "set in this process's environment.\n" +
          'Client configuration: {"command": "swf", "args": ["mcp", "--store", "sqlite:/path/to/swf.db"]}\n\n' +
          VIEWS_HELP,
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    // Acting tools (start, stop, what-if) need the REST API's write token: over stdio, in this process's environment.
    const token = apiTokenOf(undefined, io.env, io.cwd);
    const side = await openReadSide(values, io, 'create'); // it follows the log live: a run may start after it
    const actions = mcpActions(side.store, io, makeLogger(io, 'swf-mcp'));
    const server = createMcpServer({
      db: side.views.db,
      store: side.store,
      ready: () => side.views.ready(),
      actions,
      access:
        token !== undefined
          ? { allowed: true }
          : {
              allowed: false,
              refusal:
                "set SWF_API_TOKEN (the REST API's write token) in swf mcp's environment, e.g. the MCP client's \"env\" entry",
            },
    });
    const transport = new StdioServerTransport();
    const closed = new Promise<void>((resolve) => {
      transport.onclose = () => resolve();
      process.stdin.once('end', () => resolve());
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    try {
      await server.connect(transport);
      await closed;
    } finally {
      await server.close();
      await actions.close();
      await side.close();
    }
    return 0;
  },
};
