/**
 * The MCP acting tools' actions, wired here (the composition root): configurations resolve from the working
 * directory as for `swf run`, runs are the OS user's, what-if replays run on a scratch `memory:` store.
 */
import type { Logger } from 'pino';
import { heartbeatSecondsFrom } from '../agents/health.js';
import { loadConfig } from '../config/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { openEventStore } from '../eventStore/open.js';
import type { McpActions } from '../monitor/mcpOperator.js';
import { locateRun } from '../replay/runEvents.js';
import { whatIf } from '../replay/whatIf.js';
import { type StartedRun, startRunInBackground } from '../services/startRun.js';
import { stopExecution } from '../services/stopExecution.js';
import { osUser } from './commands/run.js';
import type { Io } from './context.js';

export interface ClosableMcpActions extends McpActions {
  /** Stops the runs started through MCP and waits for them to end. */
  close(): Promise<void>;
}

export function mcpActions(store: EventStore, io: Io, logger: Logger): ClosableMcpActions {
  const started = new Set<StartedRun>();
  return {
    async startRun(request) {
      const run = await startRunInBackground(
        {
          store,
          logger,
          user: osUser(io),
          // as swf run's: a run started through MCP shows its agents live on the monitor while it goes on
          heartbeatSeconds: heartbeatSecondsFrom(io.env),
          loadConfig: (name, set) =>
            loadConfig({
              ...(name !== undefined ? (/[/\\]|\.toml$/.test(name) ? { path: name } : { name }) : {}),
              set,
              env: io.env,
              cwd: io.cwd,
            }),
        },
        request,
      );
      started.add(run);
      void run.finished.then(
        () => started.delete(run),
        () => started.delete(run),
      );
      return run;
    },
    stopExecution: (executionId) => stopExecution(store, executionId),
    async whatIf(runNumber, sets) {
      const info = await locateRun(store, runNumber);
      return whatIf(store, info, sets, { logger, scratch: () => openEventStore('memory:') });
    },
    async close() {
      const runs = [...started];
      for (const r of runs) r.stop();
      await Promise.allSettled(runs.map((r) => r.finished));
    },
  };
}
