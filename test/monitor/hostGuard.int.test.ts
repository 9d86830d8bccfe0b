/**
 * The DNS-rebinding guard (issue #12, point 4): only Host headers that are exactly one of the monitor's names, with
 * its port, are answered; `127.0.0.1.attacker.example` and friends get 403, on REST and on MCP alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedHostNames, hostAllowed } from '../../src/monitor/hostGuard.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { get, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;
let port: number;

beforeAll(async () => {
  m = await startTestMonitor();
  port = Number(new URL(m.url).port);
  await appendRunFixture(m.store, { stfCount: 1 });
});
afterAll(async () => {
  await m.close();
});

const MCP_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'list_workflow_executions', arguments: {} },
});
const mcp = (host: string) =>
  get(m.url, '/mcp', {
    method: 'POST',
    headers: { Host: host, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: MCP_CALL,
  });

describe('Host header guard', () => {
  const hostile = (p: number) => [
    `127.0.0.1.attacker.example:${p}`,
    `127.attacker.example:${p}`,
    `127.0.0.1.nip.io:${p}`,
    `localhost.attacker.example:${p}`,
    `attacker.example:${p}`,
    `localhost:${p + 1}`,
    `127.0.0.1:${p}x`,
    `127.0.0.1:${p}@attacker.example`,
  ];

  it('refuses hostile Host headers on REST (403)', async () => {
    for (const host of hostile(port)) {
      const r = await get(m.url, '/api/workflow-executions/', { headers: { Host: host } });
      expect(r.status, `Host: ${host}`).toBe(403);
    }
  });

  it('refuses them on POST /mcp tools/call (403)', async () => {
    for (const host of hostile(port)) expect((await mcp(host)).status, `Host: ${host}`).toBe(403);
  });

  it('answers the exact loopback names with the port', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      const r = await get(m.url, '/api/workflow-executions/', { headers: { Host: host } });
      expect(r.status, `Host: ${host}`).toBe(200);
    }
    expect((await mcp(`127.0.0.1:${port}`)).status).toBe(200);
  });
});

describe('allowed names', () => {
  it('bound to loopback: the loopback names only', () => {
    const names = allowedHostNames('127.0.0.1');
    expect(names).toEqual(new Set(['127.0.0.1', 'localhost', '[::1]']));
    expect(hostAllowed('', names, 80)).toBe(false);
    expect(hostAllowed('localhost', names, 80)).toBe(true);
    expect(hostAllowed('localhost', names, 8000)).toBe(false);
  });

  it('bound to a name: that name and the configured public name too', () => {
    const names = allowedHostNames('monitor.lab.example', 'swf.bnl.example');
    expect(hostAllowed('monitor.lab.example:8000', names, 8000)).toBe(true);
    expect(hostAllowed('swf.bnl.example:8000', names, 8000)).toBe(true);
    expect(hostAllowed('swf.bnl.example.attacker.example:8000', names, 8000)).toBe(false);
  });
});
