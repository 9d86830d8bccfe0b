import { ValidationError } from '../../errors.js';
import { startMonitor } from '../../monitor/server.js';
import type { Command } from '../context.js';
import { makeLogger, parse, STORE_OPTION, toJson } from '../context.js';
import { openReadSide, VIEWS_HELP, VIEWS_OPTION } from './projections.js';

const usage = 'swf monitor [--host 127.0.0.1] [--port 8000] [--public-name NAME] [--views PATH] [--json] [--store URL]';

export function portOf(value: string | undefined): number {
  if (value === undefined) return 8000;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ValidationError(`--port must be a port number (0-65535; 0 picks a free one), got '${value}'`, {
      field: 'port',
    });
  }
  return Number(value);
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'serve the web page, the REST API, the live message feed (SSE) and MCP over HTTP',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(
      argv,
      {
        ...STORE_OPTION,
        ...VIEWS_OPTION,
        host: { type: 'string' },
        port: { type: 'string' },
        'public-name': { type: 'string' },
        json: { type: 'boolean' },
      },
      usage,
    );
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          '  /                      the web page (executions, runs, live counters, state charts)\n' +
          "  /api/                  REST (the testbed monitor's endpoints and field names; GET /api/ lists them)\n" +
          '  /api/messages/stream/  live messages (Server-Sent Events; Last-Event-ID or ?from=start replays)\n' +
          '  /mcp                   MCP over streamable HTTP (the same tools as swf mcp)\n\n' +
          'Read-only. Binds 127.0.0.1 unless --host says otherwise (--host 0.0.0.0 exposes it to the network).\n' +
          'Answers only requests whose Host header is exactly localhost, 127.0.0.1 or [::1], the --host name (for\n' +
          "0.0.0.0: this machine's name and addresses) or --public-name NAME (a DNS name or proxy), with its port.\n" +
          'Follows the log live; prints its URL, then runs until Ctrl-C.\n\n' +
          VIEWS_HELP,
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    const port = portOf(values.port);
    const host = values.host ?? '127.0.0.1';
    const logger = makeLogger(io, 'swf-monitor');
    const side = await openReadSide(values, io, 'create'); // it follows the log live: a run may start after it
    let monitor;
    try {
      await side.views.ready();
      side.views.follow();
      monitor = await startMonitor({
        store: side.store,
        views: side.views,
        host,
        port,
        logger,
        ...(values['public-name'] !== undefined ? { publicName: values['public-name'] } : {}),
      });
    } catch (e: unknown) {
      await side.close();
      const code = (e as { code?: unknown }).code;
      if (code === 'EADDRINUSE')
        throw new ValidationError(`port ${port} on ${host} is already in use (--port picks another)`, {
          field: 'port',
        });
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
        throw new ValidationError(`cannot listen on host '${host}'`, { field: 'host' });
      throw e;
    }
    io.stdout.write(
      values.json
        ? `${toJson({ url: monitor.url, views: side.views.path })}\n`
        : `swf monitor: ${monitor.url}/ (views ${side.views.path})\n`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await monitor.close();
    await side.close();
    return 0;
  },
};
