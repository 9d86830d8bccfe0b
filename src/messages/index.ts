/** The wire vocabulary, the domain events, the event envelope, stream names and the data products' rules. */
export * from './schemas.js';
export * from './domainEvents.js';
export * from './parse.js';
export * from './envelope.js';
export * from './streams.js';
export * from './ids.js';
export * from './naming.js';
export * from './prng.js';
export * from './dataProducts.js';
export * from './testbed.js';
export * from './recorded.js';
