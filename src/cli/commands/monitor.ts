import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { mcpActions } from '../mcpActions.js';
import { ValidationError } from '../../errors.js';
import { startMonitor } from '../../monitor/server.js';
import type { Command } from '../context.js';
import { makeLogger, parse, STORE_OPTION, storeUrl, toJson } from '../context.js';
import { WalSync } from '../../monitor/walSync.js';
import { openReadSide, VIEWS_HELP, VIEWS_OPTION } from './projections.js';

const usage =
  'swf monitor [--host 127.0.0.1] [--port 8000] [--token-file PATH] [--namespace NS] [--read-only] [--public-name NAME] [--views PATH] [--json] [--store URL]';

const options = {
  ...STORE_OPTION,
  ...VIEWS_OPTION,
  host: { type: 'string' },
  port: { type: 'string' },
  'token-file': { type: 'string' },
  namespace: { type: 'string' },
  'read-only': { type: 'boolean' },
  'public-name': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The API token: `--token-file` (kept out of argv and `ps`), else SWF_API_TOKEN. */
export function apiTokenOf(tokenFile: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, tokenFile), 'utf8');
    } catch (e: unknown) {
      throw new ValidationError(`cannot read --token-file ${tokenFile}: ${(e as Error).message}`, {
        field: 'token-file',
      });
    }
    const token = text.trim();
    if (!/^\S{8,256}$/.test(token))
      throw new ValidationError(`--token-file ${tokenFile} must hold one token of 8-256 characters without spaces`, {
        field: 'token-file',
      });
    return token;
  }
  const env_ = env.SWF_API_TOKEN;
  if (env_ === undefined || env_ === '') return undefined;
  if (!/^\S{8,256}$/.test(env_))
    throw new ValidationError('SWF_API_TOKEN must be 8-256 characters without spaces', { field: 'SWF_API_TOKEN' });
  return env_;
}

/** The `-wal` file of a `sqlite:` store URL (resolved as the store resolves it), or undefined for other stores. */
export function sqliteWalPath(url: string): string | undefined {
  if (!url.startsWith('sqlite:')) return undefined;
  return `${resolve(url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''))}-wal`;
}

export function portOf(value: string | undefined): number {
  if (value === undefined) return 8000;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ValidationError(`--port must be a port number (0-65535; 0 picks a free one), got '${value}'`, {
      field: 'port',
    });
  }
  return Number(value);
}

const isLoopbackHost = (h: string): boolean => h === 'localhost' || h === '::1' || h.startsWith('127.');

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'serve the web page, the REST API, the live message feed (SSE) and MCP over HTTP',
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          '  /                      the web page (executions, runs, live counters, state charts)\n' +
          "  /api/                  REST (the testbed monitor's endpoints and field names; GET /api/ lists them)\n" +
          '  /api/messages/stream/  live messages (Server-Sent Events; Last-Event-ID or ?from=start replays)\n' +
          '  /mcp                   MCP over streamable HTTP (the same tools as swf mcp)\n\n' +
          "Writes: the testbed monitor's write API (POST/PATCH under /api/, each write an event in the log) for\n" +
          "the real testbed agents. They need 'Authorization: Token <token>' with the token from --token-file or\n" +
          'SWF_API_TOKEN; /api/logs/ is open, as in the testbed. --read-only turns writes off. --namespace names\n' +
          'records that carry none (default swf-es).\n' +
          'Binds 127.0.0.1 unless --host says otherwise (--host 0.0.0.0 exposes it to the network, and then\n' +
          'needs a token unless --read-only).\n' +
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
    const token = apiTokenOf(values['token-file'], io.env, io.cwd);
    const namespace = values.namespace ?? 'swf-es';
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(namespace))
      throw new ValidationError(`--namespace must be 1-100 letters, digits, '.', '_' or '-', got '${namespace}'`, {
        field: 'namespace',
      });
    const readOnly = values['read-only'] === true;
    if (!readOnly && token === undefined && !isLoopbackHost(host))
      throw new ValidationError(
        `refusing to serve the write API on ${host} (not loopback) without an API token: set SWF_API_TOKEN or --token-file, or pass --read-only`,
        { field: 'host' },
      );
    const logger = makeLogger(io, 'swf-monitor');
    // It follows the log live (a run may start after it); a 2xx to a write means fsynced, hence durable. A SQLite
    // store commits without an fsync of its own and the write API fsyncs its WAL off the main thread, once for all
    // the writes of a moment (walSync.ts); other stores are durable on commit.
    const walPath = readOnly ? undefined : sqliteWalPath(storeUrl(values, io));
    const side = await openReadSide(values, io, 'create', { durable: !readOnly && walPath === undefined });
    const durability = walPath === undefined ? undefined : new WalSync(walPath);
    let monitor;
    const actions = mcpActions(side.store, io, logger);
    try {
      await side.views.ready();
      side.views.follow();
      monitor = await startMonitor({
        store: side.store,
        views: side.views,
        host,
        port,
        logger,
        ...(readOnly
          ? {}
          : { writes: { token, namespace, ...(durability ? { durability } : {}) }, mcpActions: actions }),
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
    await actions.close();
    if (durability)
      logger.info({ commits: durability.commits, fdatasyncs: durability.syncs }, 'write API: commits made durable');
    await durability?.close();
    await side.close();
    return 0;
  },
};
