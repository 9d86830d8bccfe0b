/** The agents view counts the workflow messages each agent sent, from its first heartbeat on. */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { heartbeat } from '../../src/agents/runtime.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { list } from '../../src/projections/queries.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { memoryViews } from './helpers.js';

describe('the agents view', () => {
  it('counts the workflow messages each agent sent once it has a row (heartbeats and logs not counted)', async () => {
    const store = await openEventStore('memory:');
    await appendRunFixture(store);
    // what an agent sent after its first heartbeat, counted from the log itself
    const expected = new Map<string, number>();
    for await (const e of store.readAll()) {
      const d = e.data as { msg_type?: string; sender?: string; instance_name?: string };
      if (d.msg_type === 'agent_heartbeat' && d.instance_name && !expected.has(d.instance_name))
        expected.set(d.instance_name, 0);
      else if (d.msg_type && d.msg_type !== 'agent_log' && d.msg_type !== 'agent_heartbeat' && d.sender) {
        const n = expected.get(d.sender);
        if (n !== undefined) expected.set(d.sender, n + 1);
      }
    }
    expect([...expected.values()].some((n) => n > 0)).toBe(true);
    for (const batch of [1, 1000]) {
      const views = await memoryViews(store, batch);
      await views.ready();
      const rows = list(views.db, 'agents', { filters: { status: 'all' } }).rows;
      expect(Object.fromEntries(rows.map((r) => [r.instance_name, r.messages_sent]))).toEqual(
        Object.fromEntries(expected),
      );
      await views.close();
    }
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('judges staleness by when the store recorded the last heartbeat (wall clock), not by its workflow-clock stamp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const T = Date.parse('2026-12-07T12:00:00Z');
    const store = await openEventStore('memory:');
    const beat = (name: string, stamp: number) =>
      heartbeat({ name, type: 'DATA', namespace: 'ns' }, 'READY', {
        id: randomUUID(),
        now: new Date(stamp).toISOString(),
        pid: 1,
        hostname: 'h',
      });
    // a virtual-time run's agent: stamped twenty minutes ahead, recorded ten minutes ago, never again
    vi.setSystemTime(T - 10 * 60_000);
    const gone = beat('data-agent-virtual', T + 10 * 60_000);
    await store.appendToStream(gone.stream, [gone.event]);
    // a live agent: recorded a few seconds ago, stamped by the wall clock
    vi.setSystemTime(T - 5000);
    const live = beat('data-agent-live', T - 5000);
    await store.appendToStream(live.stream, [live.event]);
    vi.setSystemTime(T);
    const views = await memoryViews(store, 1000);
    await views.ready();
    const rows = list(views.db, 'agents', { filters: { status: 'all' } }).rows;
    const byName = Object.fromEntries(rows.map((r) => [r.instance_name, r]));
    expect(byName['data-agent-virtual']).toMatchObject({ stale: true, status: 'EXITED' });
    expect(byName['data-agent-live']).toMatchObject({ stale: false, status: 'OK', operational_state: 'READY' });
    await views.close();
  });
});
