/** A real run (runWorkflow, virtual time) into a store, for the tests that replay, export or check one. */
import { pino } from 'pino';
import { type RunSummary, runWorkflow } from '../../src/agents/workflow.js';
import { loadConfig } from '../../src/config/index.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';

/** Runs the workflow with `--set` overrides into `store` (a store, or the URL of one to open and close). */
export async function runInto(store: EventStore | string, set: readonly string[]): Promise<RunSummary> {
  const s = typeof store === 'string' ? await openEventStore(store) : store;
  try {
    const config = loadConfig({ set: [...set], env: {} });
    return await runWorkflow({ store: s, config, logger: pino({ level: 'silent' }), user: 'test' });
  } finally {
    if (typeof store === 'string') await s.close();
  }
}
