import { ValidationError } from '../../errors.js';
import { DEFAULT_GONE_AFTER_MS, stopExecution } from '../../services/stopExecution.js';
import type { Command } from '../context.js';
import { openStore, parse, STORE_OPTION } from '../context.js';

const usage = 'swf stop EXECUTION_ID [--gone-after SECONDS] [--store URL]';

const options = { ...STORE_OPTION, 'gone-after': { type: 'string' } } as const;

export const stopCommand: Command = {
  name: 'stop',
  summary: 'ask a running execution to stop: the DAQ sends end_run and marks it terminated',
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nRecords StopRequested in the execution's stream; the DAQ simulator running it ends the run cleanly.\n` +
          `If nothing of the execution was appended for --gone-after seconds (default ${DEFAULT_GONE_AFTER_MS / 1000}; its\n` +
          `processes were killed), no agent would read the request: the execution is recorded as terminated here.\n`,
      );
      return 0;
    }
    const executionId = positionals[0];
    if (!executionId || positionals.length > 1) throw new ValidationError(`name one execution id; usage: ${usage}`);
    const raw = values['gone-after'];
    const goneAfter = raw === undefined ? undefined : Number(raw);
    if (goneAfter !== undefined && !(Number.isFinite(goneAfter) && goneAfter > 0)) {
      throw new ValidationError(`--gone-after must be a number of seconds > 0, got '${raw}'`, { field: 'gone-after' });
    }
    const store = await openStore(values, io, 'existing');
    try {
      const r = await stopExecution(
        store,
        executionId,
        goneAfter !== undefined ? { goneAfterMs: goneAfter * 1000 } : {},
      );
      io.stdout.write(
        r.outcome === 'terminated'
          ? `${executionId} terminated: none of its agents is running (nothing appended for ${goneAfter ?? DEFAULT_GONE_AFTER_MS / 1000} s)\n`
          : `stop requested for ${executionId}\n`,
      );
      return 0;
    } finally {
      await store.close();
    }
  },
};
