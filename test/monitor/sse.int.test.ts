/** The live feed: connected first, one event per message with its position as id, replay without gap or duplicate. */
import { afterEach, describe, expect, it } from 'vitest';
import { appendRunFixture } from '../helpers/runFixture.js';
import { get, sse, type SseClient, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor | undefined;
const clients: SseClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await m?.close();
  m = undefined;
});

const open = async (path: string, headers?: Record<string, string>): Promise<SseClient> => {
  const c = await sse(m!.url, path, headers);
  clients.push(c);
  return c;
};

/** Every workflow message in the log, as (position, type), in order. */
async function storedMessages(
  filter: (type: string, data: Record<string, unknown>) => boolean = () => true,
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of m!.store.readAll()) {
    if (['agent_heartbeat', 'agent_log'].includes(e.type) || !/^[a-z_]+$/.test(e.type)) continue;
    if (filter(e.type, e.data as Record<string, unknown>)) out.push(`${e.position}:${e.type}`);
  }
  return out;
}
const received = (c: SseClient): string[] => c.messages().map((e) => `${e.id}:${e.event}`);

describe('GET /api/messages/stream/', () => {
  it('starts with `connected`, then sends live messages: event = msg_type, data = the body with sender, namespace and position', async () => {
    m = await startTestMonitor();
    const c = await open('/api/messages/stream/');
    expect(c.status).toBe(200);
    await c.waitFor((es) => es.length >= 1);
    expect(c.events[0]).toMatchObject({ event: 'connected' });
    expect(JSON.parse(c.events[0]!.data)).toMatchObject({ client_id: expect.any(String), status: 'connected' });
    await appendRunFixture(m.store, { stfCount: 1 });
    const expected = await storedMessages();
    await c.waitFor(() => c.messages().length >= expected.length);
    expect(received(c)).toEqual(expected);
    const first = c.messages()[0]!;
    expect(JSON.parse(first.data)).toMatchObject({
      msg_type: 'run_imminent',
      sender: expect.any(String),
      namespace: 'test',
      position: Number(first.id),
      execution_id: expect.any(String),
    });
  });

  it('replays from Last-Event-ID (or ?from=start), then goes live, with no gap and no duplicate while events keep coming', async () => {
    m = await startTestMonitor();
    await appendRunFixture(m.store, { stfCount: 2 });
    const all = await storedMessages();
    const middle = all[Math.floor(all.length / 2)]!.split(':')[0]!;
    // Appends run while the clients replay.
    const more = appendRunFixture(m.store, { runNumber: 100011, stfCount: 3, commitSize: 2 });
    const fromId = await open('/api/messages/stream/', { 'Last-Event-ID': middle });
    const fromStart = await open('/api/messages/stream/?from=start');
    await more;
    const expected = await storedMessages();
    await fromStart.waitFor(() => fromStart.messages().length >= expected.length);
    await fromId.waitFor(() => received(fromId).at(-1) === expected.at(-1));
    expect(received(fromStart)).toEqual(expected);
    expect(received(fromId)).toEqual(expected.filter((x) => BigInt(x.split(':')[0]!) > BigInt(middle)));
  });

  it('filters by msg_types, agents (the sender), run_ids and namespace', async () => {
    m = await startTestMonitor();
    const run = await appendRunFixture(m.store, { stfCount: 2 });
    await appendRunFixture(m.store, { runNumber: 100011, stfCount: 1, namespace: 'other' });
    const types = await open('/api/messages/stream/?from=start&msg_types=stf_gen,end_run&run_ids=100010');
    const agent = await open(`/api/messages/stream/?from=start&agents=${run.workers[0]}&namespace=test`);
    const ns = await open('/api/messages/stream/?from=start&namespace=other&msg_types=start_run');
    const expectedTypes = await storedMessages((t, d) => ['stf_gen', 'end_run'].includes(t) && d.run_id === '100010');
    const expectedAgent = await storedMessages((_t, d) => d.sender === run.workers[0] && d.namespace === 'test');
    await types.waitFor(() => types.messages().length >= expectedTypes.length);
    await agent.waitFor(() => agent.messages().length >= expectedAgent.length);
    await ns.waitFor(() => ns.messages().length >= 1);
    expect(received(types)).toEqual(expectedTypes);
    expect(types.messages().map((e) => e.event)).toEqual(['stf_gen', 'stf_gen', 'end_run', 'end_run']);
    expect(received(agent)).toEqual(expectedAgent);
    expect(agent.messages().every((e) => e.event === 'slice_result')).toBe(true);
    expect(ns.messages().map((e) => JSON.parse(e.data) as { run_id: string })).toEqual([
      expect.objectContaining({ run_id: '100011' }),
    ]);
  });

  it('sends a heartbeat at its interval, to several clients at once, and reports them in /status/', async () => {
    m = await startTestMonitor({ heartbeatMs: 100 });
    const a = await open('/api/messages/stream/');
    const b = await open('/api/messages/stream/?msg_types=slice');
    await a.waitFor((es) => es.filter((e) => e.event === 'heartbeat').length >= 2);
    await b.waitFor((es) => es.some((e) => e.event === 'heartbeat'));
    expect(JSON.parse(a.events.find((e) => e.event === 'heartbeat')!.data)).toEqual({ timestamp: expect.any(Number) });
    const status = (await get(m.url, '/api/messages/stream/status/')).json as {
      connected_clients: number;
      client_filters: Record<string, { msg_types: string[] | null }>;
    };
    expect(status.connected_clients).toBe(2);
    expect(Object.values(status.client_filters).map((f) => f.msg_types)).toEqual(
      expect.arrayContaining([null, ['slice']]),
    );
    a.close();
    const base = m.url;
    await expect
      .poll(
        async () =>
          ((await get(base, '/api/messages/stream/status/')).json as { connected_clients: number }).connected_clients,
        { timeout: 10_000, interval: 50 },
      )
      .toBe(1);
  });

  it('answers bad parameters with a 400 before streaming', async () => {
    m = await startTestMonitor();
    for (const [path, headers] of [
      ['/api/messages/stream/?msg_types=agent_heartbeat', {}],
      ['/api/messages/stream/?run_ids=x', {}],
      ['/api/messages/stream/?foo=1', {}],
      ['/api/messages/stream/', { 'Last-Event-ID': 'abc' }],
    ] as const) {
      const r = await get(m.url, path, { headers });
      expect(r.status, path).toBe(400);
      expect(r.headers['content-type']).toMatch(/application\/json/);
    }
  });
});
