import type { EventStore, EventStoreCapabilities } from '../../src/eventStore/eventStore.js';
import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import { describeEventStore, describeGroupContract } from './eventStore.contract.js';

describeEventStore('memory', async () => getInMemoryEventStore());
describeGroupContract('memory', async () => getInMemoryEventStore());

/**
 * The group contract's expectation for a store that may give a timed-out event back to the member that timed out
 * (EventStoreDB) accepts either member, so it holds of this store too: running it here checks that branch works
 * before a real server runs it.
 */
const claiming = (capabilities: Partial<EventStoreCapabilities>) => async (): Promise<EventStore> => {
  const store = getInMemoryEventStore();
  return Object.assign(Object.create(store) as EventStore, {
    capabilities: { ...store.capabilities, ...capabilities },
  });
};
describeGroupContract(
  'memory, claiming redeliversToAnotherMember false',
  claiming({ redeliversToAnotherMember: false }),
);
