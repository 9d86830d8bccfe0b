/**
 * The monitor: one node:http server for the web page (`/`), the REST API (`/api/...`), the live feed
 * (`/api/messages/stream/`) and MCP (`/mcp`). It binds 127.0.0.1 unless told otherwise. Reads are GET and HEAD (MCP's
 * POST answers read-only tools); with `writes`, the testbed's write API (POST/PATCH under /api/, `testbedWrites.ts`)
 * turns each write into events. It answers only requests whose Host header is exactly one of its names with its
 * port (hostGuard.ts: a DNS-rebinding page cannot reach it). Every read waits for the views to catch up.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Logger } from 'pino';
import type { EventStore } from '../eventStore/eventStore.js';
import { describeError, isSwfError, isValidationError, ValidationError } from '../errors.js';
import type { Views } from '../projections/views.js';
import { LiveFeed, parseFeedQuery } from './liveFeed.js';
import { allowedHostNames, hostAllowed, isLoopbackBind } from './hostGuard.js';
import { createMcpServer } from './mcp.js';
import type { McpAccess, McpActions } from './mcpOperator.js';
import { API_INDEX, handleApi } from './rest.js';
import { isWriteMethod, refusal, TestbedWrites, WRITE_INDEX } from './testbedWrites.js';
import { type Durability, TestbedApi } from '../application/testbedApi/service.js';
import { vendorFile } from './vendor.js';

export interface MonitorOptions {
  store: EventStore;
  views: Views;
  host?: string;
  port?: number;
  logger?: Pick<Logger, 'warn' | 'info' | 'debug' | 'error'>;
  /** SSE heartbeat interval. Default 15 000 ms. */
  heartbeatMs?: number;
  /**
   * The testbed's write API (POST/PATCH under /api/). Absent: the monitor is read-only. `token` is what writes
   * other than /api/logs/ need; without one only the open log endpoint writes.
   */
  writes?: {
    token: string | undefined;
    namespace: string;
    /** When the store's commits are not durable by themselves: what makes them so before a 2xx (walSync.ts). */
    durability?: Durability;
  };
  /** The name clients use when the monitor is bound elsewhere than loopback (a reverse proxy's, a DNS name). */
  publicName?: string;
  /**
   * What MCP's acting tools (start_workflow, stop_workflow, what_if_replay) call. They also need the write API
   * (`writes`) and its token in the MCP request's `Authorization: Token` header.
   */
  mcpActions?: McpActions;
}

export interface Monitor {
  url: string;
  server: Server;
  feed: LiveFeed;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's files: src/monitor/public (also when running from dist/, where only the JavaScript is). */
export function publicDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, 'public'), join(here, '..', '..', '..', 'src', 'monitor', 'public')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[0]!;
}

/** The HTTP status of an error: every typed error of ours has one; only a bug is a 500. */
export function statusOf(e: unknown): number {
  if (!isSwfError(e)) return 500;
  const code = e.code;
  switch (code) {
    case 'VALIDATION':
      return 400;
    case 'NOT_FOUND':
      return 404;
    // a conflict, and a command the state does not allow: the client may read again and retry
    case 'CONCURRENCY':
    case 'ILLEGAL_STATE':
      return 409;
    case 'STORE_UNAVAILABLE':
    case 'STORE_LOCKED':
    case 'STORE_CORRUPT':
      return 503;
    default: {
      const never: never = code;
      return never;
    }
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  // Positions and revisions are bigints in the store; JSON numbers on the wire.
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(head ? undefined : text);
}

function sendError(res: ServerResponse, e: unknown, logger: MonitorOptions['logger'], head = false): void {
  const status = statusOf(e);
  if (status === 500) logger?.error({ err: describeError(e) }, 'monitor request failed');
  const body =
    status === 500
      ? { detail: 'internal error (the monitor log has the details)', code: 'INTERNAL' }
      : {
          detail: describeError(e),
          code: isSwfError(e) ? e.code : 'INTERNAL',
          ...(isValidationError(e) && e.details.field ? { field: e.details.field } : {}),
        };
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, body, head);
}

export async function startMonitor(options: MonitorOptions): Promise<Monitor> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8000;
  const logger = options.logger;
  const { views, store } = options;
  const feed = new LiveFeed(store, {
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(logger ? { logger } : {}),
  });
  const root = publicDir();
  const loopbackOnly = isLoopbackBind(host);
  if (options.writes && !loopbackOnly && options.writes.token === undefined) {
    throw new ValidationError(
      `refusing to serve the write API on ${host} (not loopback) without an API token: set SWF_API_TOKEN or --token-file`,
      { field: 'host' },
    );
  }
  const writes = options.writes
    ? new TestbedWrites({
        api: new TestbedApi({
          store,
          namespace: options.writes.namespace,
          ...(options.writes.durability ? { durability: options.writes.durability } : {}),
        }),
        token: options.writes.token,
        logger,
      })
    : undefined;
  const allowedHosts = allowedHostNames(host, options.publicName);
  let baseUrl = '';
  /** The port listened on (known before the first request; `server.address()` is a system call per request). */
  let boundPort = port;

  const serveStatic = (res: ServerResponse, pathname: string, head: boolean): void => {
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const vendor = vendorFile(pathname);
    const file = vendor ?? normalize(join(root, rel));
    if (!vendor && (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile())) {
      sendJson(res, 404, { detail: `no page ${pathname.slice(0, 100)}`, code: 'NOT_FOUND' }, head);
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': PAGE_CSP,
    });
    res.end(head ? undefined : body);
  };

  const serveMcp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      res.writeHead(405, { ...SECURITY_HEADERS, Allow: 'POST', 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          error: {
            code: -32000,
            message: 'Method not allowed: this MCP endpoint is stateless; POST JSON-RPC requests',
          },
          id: null,
        }),
      );
      return;
    }
    const refused = options.writes
      ? refusal(req, options.writes.token)
      : 'this monitor serves no write API (it was started --read-only)';
    const access: McpAccess =
      refused === undefined
        ? { allowed: true }
        : {
            allowed: false,
            refusal: `${refused} Send the REST API's write token as 'Authorization: Token <token>' with the MCP requests.`,
          };
    const server = createMcpServer({
      db: views.db,
      store,
      ready: () => views.ready(),
      baseUrl,
      access,
      ...(options.mcpActions ? { actions: options.mcpActions } : {}),
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    const hostHeader = req.headers.host ?? '';
    if (!hostAllowed(hostHeader, allowedHosts, boundPort)) {
      sendJson(
        res,
        403,
        {
          detail: `this monitor answers only requests to ${[...allowedHosts].join(', ')} on its port, not to ${JSON.stringify(hostHeader.slice(0, 100))}`,
          code: 'FORBIDDEN',
        },
        head,
      );
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://monitor.invalid');
    } catch {
      sendJson(res, 400, { detail: 'the request URL is not valid', code: 'VALIDATION' }, head);
      return;
    }
    if (url.pathname === '/mcp' || url.pathname === '/mcp/') {
      await serveMcp(req, res);
      return;
    }
    // A write needs only the path (the most frequent requests: the agents' logs); a read gets the URL with the
    // Host it was asked for.
    if (writes && isWriteMethod(req.method) && url.pathname.startsWith('/api/')) {
      await writes.serve(req, res, url.pathname);
      return;
    }
    try {
      url = new URL(`${url.pathname}${url.search}`, `http://${hostHeader || `${host}:${port}`}`);
    } catch {
      sendJson(res, 400, { detail: 'the request URL is not valid', code: 'VALIDATION' }, head);
      return;
    }
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, {
        ...SECURITY_HEADERS,
        Allow: 'GET, HEAD',
        'Content-Type': 'application/json; charset=utf-8',
      });
      res.end(
        JSON.stringify({
          detail: `method ${req.method ?? ''} not allowed: the monitor is read-only`,
          code: 'METHOD_NOT_ALLOWED',
        }),
      );
      return;
    }
    try {
      if (url.pathname === '/api/messages/stream/' || url.pathname === '/api/messages/stream') {
        const lastEventId = req.headers['last-event-id'];
        const query = parseFeedQuery(url.searchParams, Array.isArray(lastEventId) ? lastEventId[0] : lastEventId);
        await feed.serve(req, res, query);
        return;
      }
      if (url.pathname === '/api/messages/stream/status/' || url.pathname === '/api/messages/stream/status') {
        sendJson(res, 200, feed.status(), head);
        return;
      }
      if (url.pathname === '/api' || url.pathname === '/api/') {
        const r = await views.ready();
        sendJson(
          res,
          200,
          { endpoints: API_INDEX, ...(writes ? { writes: WRITE_INDEX } : {}), position: Number(r.position) },
          head,
        );
        return;
      }
      if (url.pathname.startsWith('/api/')) {
        await views.ready();
        sendJson(res, 200, await handleApi(views.db, store, url), head);
        return;
      }
      serveStatic(res, url.pathname, head);
    } catch (e: unknown) {
      sendError(res, e, logger, head);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => sendError(res, e, logger));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  await feed.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  boundPort = address.port;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  baseUrl = `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${address.port}`;
  return {
    url: baseUrl,
    server,
    feed,
    async close() {
      await feed.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
