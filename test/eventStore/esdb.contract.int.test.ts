/**
 * The shared contract suite, and what only EventStoreDB has, against a real server. Runs when
 * EVENTSTORE_CONNECTION_STRING is set; otherwise says once that it skipped and how to run it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStore, openEventStore } from '../../src/index.js';
import { collect, describeEventStore, describeGroupContract } from './eventStore.contract.js';

const connectionString = process.env.EVENTSTORE_CONNECTION_STRING;
const HOW_TO_RUN =
  '`docker compose up -d eventstore`, then `EVENTSTORE_CONNECTION_STRING=esdb://localhost:2113?tls=false npm test`';
const skipReason = connectionString
  ? undefined
  : `no EventStoreDB server: EVENTSTORE_CONNECTION_STRING is not set (to run it: ${HOW_TO_RUN})`;
if (skipReason) {
  console.warn(`[swf-es] skipped the EventStoreDB contract suite and adapter tests: ${skipReason}`);
}

const open = (): Promise<EventStore> => openEventStore(connectionString ?? '');

describeEventStore('EventStoreDB', open, { skipReason, reopen: open });
describeGroupContract('EventStoreDB', open, { skipReason });

describe.skipIf(skipReason !== undefined)('EventStoreDB adapter against a server', () => {
  let store: EventStore;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store.close();
  });

  it('keeps checkpoint streams out of $all and headPosition', async () => {
    const p = `t${randomUUID().slice(0, 8)}`;
    const r = await store.appendToStream(`${p}-run`, [{ type: 'stf_gen', data: {} }]);
    await store.checkpoints.set(`${p}-agent`, r.position);
    expect(await store.headPosition()).toBe(r.position);
    const recent = await collect(store.readAll({ direction: 'backwards', maxCount: 20 }));
    expect(recent.some((e) => e.streamName.startsWith('swf-checkpoint-'))).toBe(false);
    expect(recent[0]!.position).toBe(r.position);
  });

  it('keeps only the last event of a checkpoint stream', async () => {
    const name = `t${randomUUID().slice(0, 8)}-agent`;
    for (const position of [1n, 2n, 3n]) await store.checkpoints.set(name, position);
    const events = await collect(store.readStream(`swf-checkpoint-${name}`));
    expect(events.map((e) => (e.data as { position: string }).position)).toEqual(['3']);
    expect(await store.checkpoints.get(name)).toBe(3n);
  });

  it('never shows the credentials of the connection string', () => {
    expect(store.url).not.toMatch(/:[^/@]*@/);
  });
});
