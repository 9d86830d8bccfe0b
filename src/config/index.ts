/** TOML configuration: testbed.toml + workflow files + includes + overrides, validated. */
export * from './schema.js';
export * from './load.js';
