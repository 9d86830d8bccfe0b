import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ValidationError } from '../../errors.js';
import { createMcpServer } from '../../monitor/mcp.js';
import type { Command } from '../context.js';
import { parse, STORE_OPTION } from '../context.js';
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
          'list_tf_slices, get_tf_slice, list_logs, list_agents. Each answer catches up with the log first.\n' +
          'Client configuration: {"command": "swf", "args": ["mcp", "--store", "sqlite:/path/to/swf.db"]}\n\n' +
          VIEWS_HELP,
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    const side = await openReadSide(values, io, 'create'); // it follows the log live: a run may start after it
    const server = createMcpServer({ db: side.views.db, store: side.store, ready: () => side.views.ready() });
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
      await side.close();
    }
    return 0;
  },
};
