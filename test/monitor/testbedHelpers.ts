/** A monitor with the testbed's write API on a fresh durable SQLite store, and a small JSON client for it. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type Monitor, startMonitor } from '../../src/monitor/server.js';
import { openViews, type Views } from '../../src/projections/views.js';

export const TOKEN = 'test-token-0123456789';

export interface WriteMonitor {
  dir: string;
  storeUrl: string;
  store: EventStore;
  views: Views;
  monitor: Monitor;
  url: string;
  close(): Promise<void>;
}

export async function startWriteMonitor(options: { token?: string | undefined } = {}): Promise<WriteMonitor> {
  const dir = mkdtempSync(join(tmpdir(), 'swf-testbed-api-'));
  const storeUrl = `sqlite:${join(dir, 'swf.db')}`;
  const store = await openEventStore(storeUrl, { durable: true });
  const views = await openViews(store, { cwd: dir });
  views.follow();
  const token = 'token' in options ? options.token : TOKEN;
  const monitor = await startMonitor({
    store,
    views,
    host: '127.0.0.1',
    port: 0,
    writes: { token, namespace: 'torre1' },
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

export interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string | null; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = options.token === undefined ? TOKEN : options.token;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (token !== null) headers.Authorization = `Token ${token}`;
  if (body !== undefined || options.raw !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(options.raw !== undefined ? { body: options.raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    // not JSON: kept as text for the assertion message
  }
  return { status: r.status, body: parsed, headers: r.headers };
}

export interface CorpusCall {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  auth: string | null;
  status: number;
  response?: unknown;
}

/** The real agents' REST calls captured from a testbed run (test/fixtures/testbed-wire, from shared/reference). */
export function corpus(): CorpusCall[] {
  const file = fileURLToPath(new URL('../fixtures/testbed-wire/rest.ndjson', import.meta.url));
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CorpusCall);
}
