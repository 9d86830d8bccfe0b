export * from './errors.js';
export * from './eventStore/eventStore.js';
export { openEventStore, DEFAULT_STORE_URL, type OpenOptions } from './eventStore/open.js';
