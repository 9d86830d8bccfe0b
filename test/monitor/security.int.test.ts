/** Hostile input gets a 400 (or 404), never a 500; the monitor only answers localhost and changes nothing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRunFixture } from '../helpers/runFixture.js';
import { get, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;

beforeAll(async () => {
  m = await startTestMonitor();
  await appendRunFixture(m.store, { stfCount: 1 });
});
afterAll(async () => {
  await m.close();
});

const HOSTILE_QUERIES = [
  "/api/tf-slices/?run_number=1'%20OR%20'1'='1",
  '/api/tf-slices/?run_number=100010;DROP%20TABLE%20tf_slices',
  '/api/tf-slices/?run_number=99999999999999999999999999',
  '/api/tf-slices/?run_number=-1',
  '/api/tf-slices/?run_number=1e5',
  '/api/tf-slices/?run_number=%EF%BC%91%EF%BC%90', // fullwidth digits
  '/api/tf-slices/?status=%27completed%27',
  '/api/tf-slices/?status=completed&status=failed',
  '/api/tf-slices/?limit=-1',
  '/api/tf-slices/?limit=1e9',
  '/api/tf-slices/?limit=99999999999999999999',
  '/api/tf-slices/?limit=10&offset=NaN',
  '/api/tf-slices/?slice_id=0x10',
  '/api/tf-slices/?tf_filename=' + 'x'.repeat(5000),
  '/api/tf-slices/?tf_filename=a%00b',
  '/api/tf-slices/?%E2%98%83=snow',
  '/api/workflow-executions/?start_time=yesterday',
  '/api/workflow-executions/?start_time=2026-13-45T99:99:99Z',
  '/api/workflow-executions/?currently_running=maybe',
  '/api/logs/?level=LOUD',
  '/api/logs/?level=51',
  '/api/runs/%E2%9C%93/',
  '/api/runs/100010%27--/',
  '/api/logs/1%20OR%201=1/',
  '/api/workflow-executions/%E0%A4%A/',
  '/api/workflow-executions/' + 'e'.repeat(300) + '/',
  '/api/tf-slices/counts/',
  '/api/tf-slices/counts/?run_number=abc',
  '/api/messages/stream/?run_ids=1,abc',
  '/api/messages/stream/?msg_types=slice,%3Cscript%3E',
  '/api/messages/stream/?from=yesterday',
  '/api/machines/?execution_id=a&execution_id=b',
];

describe('hostile query strings', () => {
  it.each(HOSTILE_QUERIES)('%s → 400 with a JSON error', async (path) => {
    const r = await get(m.url, path);
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ detail: expect.any(String), code: 'VALIDATION' });
  });

  it('text filters are bound parameters: quotes, wildcards and unicode match literally', async () => {
    // (log messages here contain single underscores, so '__' is the wildcard probe)
    for (const value of ["x' OR '1'='1", '%', '__', '\\', '漢字 ✓ 🚀', "'; DROP TABLE tf_slices; --"]) {
      const r = await get(m.url, `/api/tf-slices/?stf_filename=${encodeURIComponent(value)}`);
      expect(r.status).toBe(200);
      expect(r.json).toEqual([]);
      const logs = await get(m.url, `/api/logs/?search=${encodeURIComponent(value)}`);
      expect(logs.status).toBe(200);
      expect(logs.json).toEqual([]);
    }
    expect(((await get(m.url, '/api/tf-slices/')).json as unknown[]).length).toBeGreaterThan(0);
  });

  it('an empty filter value means no filter, as in DRF', async () => {
    const r = await get(m.url, '/api/tf-slices/?run_number=&status=');
    expect(r.status).toBe(200);
    expect((r.json as unknown[]).length).toBeGreaterThan(0);
  });

  it('unknown ids and paths are 404s, also with traversal and odd characters', async () => {
    for (const path of [
      '/api/runs/123/',
      '/api/workflow-executions/%27%3B--/',
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/app.js/../../../package.json',
      '/api/stf-files/..%2F..%2Fswf.db/',
    ]) {
      const r = await get(m.url, path);
      expect([400, 404], `${path}: ${r.status} ${r.text}`).toContain(r.status);
      expect(r.text).not.toContain('root:');
    }
  });
});

describe('the edge', () => {
  it('answers only requests addressed to localhost (DNS rebinding)', async () => {
    const r = await get(m.url, '/api/runs/', { headers: { Host: 'attacker.example' } });
    expect(r.status).toBe(403);
    expect((await get(m.url, '/api/runs/', { headers: { Host: `localhost:${new URL(m.url).port}` } })).status).toBe(
      200,
    );
  });

  it('sends no CORS header: other sites cannot read it from a browser', async () => {
    const r = await get(m.url, '/api/runs/', { headers: { Origin: 'https://attacker.example' } });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('binds 127.0.0.1 by default', () => {
    const address = m.monitor.server.address();
    expect(address).toMatchObject({ address: '127.0.0.1' });
  });

  it('changes nothing: writes are refused and the log is untouched', async () => {
    const before = await m.store.headPosition();
    for (const [method, path] of [
      ['POST', '/api/systemagents/heartbeat/'],
      ['POST', '/api/logs/'],
      ['DELETE', '/api/runs/100010/'],
      ['PUT', '/api/run-states/100010/'],
      ['GET', '/mcp'],
    ] as const) {
      const r = await get(m.url, path, { method, body: '{}', headers: { 'Content-Type': 'application/json' } });
      expect(r.status, `${method} ${path}`).toBe(405);
    }
    expect(await m.store.headPosition()).toBe(before);
  });
});
