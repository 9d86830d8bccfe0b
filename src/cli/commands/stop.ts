import { ConcurrencyError, NotFoundError, ValidationError } from '../../errors.js';
import { deriveId, domainEvent, streams } from '../../messages/index.js';
import type { Command } from '../context.js';
import { openStore, parse, STORE_OPTION } from '../context.js';

const usage = 'swf stop EXECUTION_ID [--store URL]';

export const stopCommand: Command = {
  name: 'stop',
  summary: 'ask a running execution to stop: the DAQ sends end_run and marks it terminated',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { ...STORE_OPTION }, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nRecords StopRequested in the execution's stream; the DAQ simulator running it ends the run cleanly.\n`,
      );
      return 0;
    }
    const executionId = positionals[0];
    if (!executionId || positionals.length > 1) throw new ValidationError(`name one execution id; usage: ${usage}`);
    const store = await openStore(values, io, 'existing');
    try {
      const stream = streams.execution(executionId);
      let namespace: string | undefined;
      let finished: string | undefined;
      let last: bigint | undefined;
      try {
        for await (const e of store.readStream(stream)) {
          last = e.revision;
          const d = e.data as { namespace?: string; status?: string };
          if (e.type === 'WorkflowExecutionStarted') namespace = d.namespace;
          if (e.type === 'WorkflowExecutionFinished') finished = d.status;
        }
      } catch (e: unknown) {
        if (e instanceof NotFoundError) throw new NotFoundError(`unknown execution '${executionId}' in ${store.url}`);
        throw e;
      }
      if (finished)
        throw new ConcurrencyError(`execution '${executionId}' already ended (${finished}); nothing to stop`);
      const now = new Date().toISOString();
      await store.appendToStream(
        stream,
        [
          domainEvent(
            'StopRequested',
            { execution_id: executionId, requested_at: now },
            { id: deriveId(executionId, 'stop', now), namespace: namespace ?? 'default', executionId },
          ),
        ],
        { expectedRevision: last ?? 'stream_exists' },
      );
      io.stdout.write(`stop requested for ${executionId}\n`);
      return 0;
    } finally {
      await store.close();
    }
  },
};
