/** A monitor on a fresh SQLite store, an HTTP getter, and a small Server-Sent Events client. */
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type Monitor, startMonitor } from '../../src/monitor/server.js';
import { openViews, type Views } from '../../src/projections/views.js';

export interface TestMonitor {
  dir: string;
  storeUrl: string;
  store: EventStore;
  views: Views;
  monitor: Monitor;
  url: string;
  close(): Promise<void>;
}

export async function startTestMonitor(
  options: {
    heartbeatMs?: number;
    follow?: boolean;
    /** A store that already holds events (default: a fresh one). */ storeUrl?: string;
  } = {},
): Promise<TestMonitor> {
  const dir = mkdtempSync(join(tmpdir(), 'swf-monitor-'));
  const storeUrl = options.storeUrl ?? `sqlite:${join(dir, 'swf.db')}`;
  const store = await openEventStore(storeUrl);
  const views = await openViews(store, { cwd: dir });
  if (options.follow ?? true) views.follow();
  const monitor = await startMonitor({
    store,
    views,
    host: '127.0.0.1',
    port: 0,
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
  });
  return {
    dir,
    storeUrl,
    store,
    views,
    monitor,
    url: monitor.url,
    async close() {
      await monitor.close();
      await views.close();
      await store.close();
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** A request with exactly the path given (no normalization, so hostile paths reach the server as written). */
export function get(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpAnswer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export interface SseClient {
  status: number;
  events: SseEvent[];
  /** Events other than `connected` and `heartbeat`. */
  messages(): SseEvent[];
  waitFor(pred: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens a stream and parses its frames as they come. */
export function sse(base: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const listeners = new Set<() => void>();
    const req = request(
      { host: u.hostname, port: u.port, path, headers: { Accept: 'text/event-stream', ...headers } },
      (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let i: number;
          while ((i = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            const e: SseEvent = { event: 'message', data: '' };
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              const [k, ...rest] = line.split(':');
              const v = rest.join(':').replace(/^ /, '');
              if (k === 'id') e.id = v;
              else if (k === 'event') e.event = v;
              else if (k === 'data') data.push(v);
            }
            if (data.length === 0 && e.id === undefined) continue;
            e.data = data.join('\n');
            events.push(e);
            for (const l of listeners) l();
          }
        });
        const client: SseClient = {
          status: res.statusCode ?? 0,
          events,
          messages: () => events.filter((e) => e.event !== 'connected' && e.event !== 'heartbeat'),
          waitFor(pred, timeoutMs = 10_000) {
            return new Promise((ok, fail) => {
              const check = (): void => {
                if (pred(events)) {
                  listeners.delete(check);
                  clearTimeout(timer);
                  ok();
                }
              };
              const timer = setTimeout(() => {
                listeners.delete(check);
                fail(
                  new Error(
                    `timed out; got ${events.length} events: ${events
                      .slice(-3)
                      .map((e) => e.event)
                      .join(', ')}`,
                  ),
                );
              }, timeoutMs);
              listeners.add(check);
              check();
            });
          },
          close: () => req.destroy(),
        };
        resolve(client);
      },
    );
    req.on('error', (e) => {
      if ((e as { code?: string }).code !== 'ECONNRESET') reject(e);
    });
    req.end();
  });
}
