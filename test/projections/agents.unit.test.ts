/** The agents view counts the workflow messages each agent sent, from its first heartbeat on. */
import { describe, expect, it } from 'vitest';
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
});
