import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import { describeEventStore, describeGroupContract } from './eventStore.contract.js';

describeEventStore('memory', async () => getInMemoryEventStore());
describeGroupContract('memory', async () => getInMemoryEventStore());
