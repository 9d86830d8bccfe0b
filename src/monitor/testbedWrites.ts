/**
 * The testbed monitor's write API over HTTP (testbed-facts §5.1): a thin adapter that checks the token, reads a
 * bounded JSON body, calls the application service and answers as Django REST Framework does (DRF's status codes
 * and error bodies). `/api/logs/` is open, as in the testbed, but its bodies are smaller and its writers fewer.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiAnswer, TestbedApi } from '../application/testbedApi/service.js';
import { isFieldValidationError } from '../application/testbedApi/fields.js';
import { describeError, isSwfError } from '../errors.js';

/** Largest body a write takes (a workflow definition carries the workflow's Python source). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Largest body of an (unauthenticated) log record. */
export const MAX_LOG_BODY_BYTES = 64 * 1024;
/** Log writes in flight at once; more get 503 (the open endpoint cannot be used to queue without bound). */
export const MAX_LOG_WRITES_IN_FLIGHT = 256;

export interface TestbedWriteOptions {
  api: TestbedApi;
  /** The token writes need (`Authorization: Token <token>`); undefined: writes other than logs are refused. */
  token: string | undefined;
  logger?: { error(obj: unknown, msg: string): void } | undefined;
}

interface WriteRoute {
  method: 'POST' | 'PATCH';
  pattern: RegExp;
  open?: boolean;
  call(api: TestbedApi, body: unknown, m: string[]): Promise<ApiAnswer>;
}

const S = '\\/?$'; // Django's paths end in '/'; a client that drops it still gets the endpoint
const digits = (s: string | undefined): number => (/^\d{1,15}$/.test(s ?? '') ? Number(s) : Number.NaN);

const ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: new RegExp(`^/api/state/next-agent-id${S}`), call: (a) => a.nextAgentId() },
  { method: 'POST', pattern: new RegExp(`^/api/state/next-run-number${S}`), call: (a) => a.nextRunNumber() },
  {
    method: 'POST',
    pattern: new RegExp(`^/api/state/next-workflow-execution-id${S}`),
    call: (a, b) => a.nextExecutionSequence(b),
  },
  { method: 'POST', pattern: new RegExp(`^/api/systemagents/heartbeat${S}`), call: (a, b) => a.heartbeat(b) },
  { method: 'POST', pattern: new RegExp(`^/api/subscribers${S}`), call: (a, b) => a.registerSubscriber(b) },
  { method: 'POST', pattern: new RegExp(`^/api/logs${S}`), open: true, call: (a, b) => a.appendLog(b) },
  { method: 'POST', pattern: new RegExp(`^/api/namespaces/ensure${S}`), call: (a, b) => a.ensureNamespace(b) },
  { method: 'POST', pattern: new RegExp(`^/api/workflow-definitions${S}`), call: (a, b) => a.registerDefinition(b) },
  { method: 'POST', pattern: new RegExp(`^/api/workflow-executions${S}`), call: (a, b) => a.registerExecution(b) },
  {
    method: 'PATCH',
    pattern: new RegExp(`^/api/workflow-executions/([^/]{1,200})${S}`),
    call: (a, b, m) => a.updateExecution(decodeURIComponent(m[1] ?? ''), b),
  },
  { method: 'POST', pattern: new RegExp(`^/api/runs${S}`), call: (a, b) => a.registerRun(b) },
  { method: 'PATCH', pattern: new RegExp(`^/api/runs/([^/]+)${S}`), call: (a, b, m) => a.updateRun(digits(m[1]), b) },
  { method: 'POST', pattern: new RegExp(`^/api/run-states${S}`), call: (a, b) => a.reportRunState(b) },
  {
    method: 'PATCH',
    pattern: new RegExp(`^/api/run-states/([^/]+)${S}`),
    call: (a, b, m) => a.updateRunState(digits(m[1]), b),
  },
  { method: 'POST', pattern: new RegExp(`^/api/stf-files${S}`), call: (a, b) => a.registerStfFile(b) },
  {
    method: 'PATCH',
    pattern: new RegExp(`^/api/stf-files/([^/]+)${S}`),
    call: (a, b, m) => a.updateStfFile(m[1] ?? '', b),
  },
  { method: 'POST', pattern: new RegExp(`^/api/fastmon-files${S}`), call: (a, b) => a.registerSample(b) },
  { method: 'POST', pattern: new RegExp(`^/api/tf-slices${S}`), call: (a, b) => a.registerSlice(b) },
  {
    method: 'PATCH',
    pattern: new RegExp(`^/api/tf-slices/([^/]+)${S}`),
    call: (a, b, m) => a.updateSlice(digits(m[1]), b),
  },
  { method: 'POST', pattern: new RegExp(`^/api/system-state-events${S}`), call: (a, b) => a.recordSystemStateEvent(b) },
];

/** The write endpoints, for `GET /api/`. */
export const WRITE_INDEX = ROUTES.map(
  (r) =>
    `${r.method} ${r.pattern.source
      .replace(/\\\//g, '/')
      .replace(/\([^)]*\)/g, '{key}')
      .replace(/^\^|\/\?\$$/g, '')}/`,
);

function answer(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'X-Content-Type-Options': 'nosniff',
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Why the request may not write, or undefined when it may (the write API's check; MCP's acting tools use it too). */
export function refusal(req: IncomingMessage, token: string | undefined): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined || header === '') return 'Authentication credentials were not provided.';
  const m = /^Token\s+(\S+)\s*$/i.exec(header);
  if (!m) return 'Invalid token header. No credentials provided.';
  if (token === undefined) return 'Invalid token.';
  // Constant time: compare digests, so neither the length nor a prefix of the token leaks through timing.
  return timingSafeEqual(digest(m[1]!), digest(token)) ? undefined : 'Invalid token.';
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function isWriteMethod(method: string | undefined): boolean {
  return method === 'POST' || method === 'PATCH' || method === 'PUT' || method === 'DELETE';
}

export class TestbedWrites {
  private logsInFlight = 0;

  constructor(private readonly options: TestbedWriteOptions) {}

  /** Answers a POST/PATCH/PUT/DELETE under /api/. */
  async serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const method = req.method ?? '';
    // The route of this method and path, matched once; the others are looked at only to answer 404 or 405.
    let route: WriteRoute | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of ROUTES) {
      if (r.method !== method) continue;
      match = r.pattern.exec(pathname);
      if (match) {
        route = r;
        break;
      }
    }
    if (!route || !match) {
      const routes = ROUTES.filter((r) => r.pattern.test(pathname));
      if (routes.length === 0) {
        answer(res, 404, { detail: 'Not found.' });
        return;
      }
      answer(
        res,
        405,
        { detail: `Method "${method.slice(0, 20)}" not allowed.` },
        {
          Allow: ['GET', 'HEAD', ...new Set(routes.map((r) => r.method))].join(', '),
        },
      );
      return;
    }
    if (!route.open) {
      const why = refusal(req, this.options.token);
      if (why !== undefined) {
        answer(res, 401, { detail: why }, { 'WWW-Authenticate': 'Token' });
        return;
      }
    }
    await this.serveRoute(req, res, route, [...match]);
  }

  private async serveRoute(req: IncomingMessage, res: ServerResponse, route: WriteRoute, m: string[]): Promise<void> {
    if (route.open) {
      if (this.logsInFlight >= MAX_LOG_WRITES_IN_FLIGHT) {
        answer(res, 503, { detail: 'Too many log records in flight; try again.' }, { 'Retry-After': '1' });
        return;
      }
      this.logsInFlight++;
    }
    try {
      let raw: Buffer;
      try {
        raw = await readBody(req, route.open ? MAX_LOG_BODY_BYTES : MAX_BODY_BYTES);
      } catch (e: unknown) {
        if (e instanceof BodyTooLarge) {
          answer(
            res,
            413,
            {
              detail: `Request body too large: the limit is ${route.open ? MAX_LOG_BODY_BYTES : MAX_BODY_BYTES} bytes.`,
            },
            { Connection: 'close' },
          );
          return;
        }
        throw e;
      }
      let body: unknown = null;
      const text = raw.toString('utf8');
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text) as unknown;
        } catch (e: unknown) {
          answer(res, 400, { detail: `JSON parse error - ${describeError(e).slice(0, 200)}` });
          return;
        }
      }
      const a = await route.call(this.options.api, body, m);
      answer(res, a.status, a.body);
    } catch (e: unknown) {
      this.fail(res, e);
    } finally {
      if (route.open) this.logsInFlight--;
    }
  }

  private fail(res: ServerResponse, e: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (isFieldValidationError(e)) return answer(res, 400, e.errors);
    if (isSwfError(e)) {
      switch (e.code) {
        case 'VALIDATION':
          return answer(res, 400, { detail: e.message });
        case 'NOT_FOUND':
          return answer(res, 404, { detail: 'Not found.' });
        case 'CONCURRENCY':
        case 'ILLEGAL_STATE':
          return answer(res, 409, { detail: e.message });
        case 'STORE_UNAVAILABLE':
        case 'STORE_LOCKED':
        case 'STORE_CORRUPT':
          return answer(
            res,
            503,
            { detail: `the event store cannot take the write: ${e.message}` },
            { 'Retry-After': '1' },
          );
      }
    }
    this.options.logger?.error({ err: describeError(e) }, 'testbed write failed');
    answer(res, 500, { detail: 'internal error (the monitor log has the details)' });
  }
}
