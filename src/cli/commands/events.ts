import { ValidationError } from '../../errors.js';
import type { DamagedEvent } from '../../eventStore/eventStore.js';
import type { Command } from '../context.js';
import { openStore, parse, positiveInt, STORE_OPTION, toJson } from '../context.js';

const usage = 'swf events read [--stream S] [--from POS] [--limit N] [--json] [--skip-damaged] [--store URL]';

const options = {
  ...STORE_OPTION,
  stream: { type: 'string' },
  from: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  'skip-damaged': { type: 'boolean' },
} as const;

export const eventsCommand: Command = {
  name: 'events',
  summary: 'read the event log (all of it, one stream, from a position)',
  usage,
  options,
  subcommands: ['read', 'streams'],
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nPrints events in log order: all of them, or one stream's (--stream), from a log position or a stream\n` +
          `revision (--from, inclusive), at most --limit. With --json, one JSON object per line:\n` +
          `position, streamName, revision, type, data, metadata, recordedAt.\n` +
          `--skip-damaged reads past events whose stored bytes were damaged, naming each on stderr (without it,\n` +
          `one is an error naming the store and its position, exit 5).\n`,
      );
      return 0;
    }
    if (positionals[0] !== 'read' || positionals.length > 1)
      throw new ValidationError(`unknown events subcommand; usage: ${usage}`);
    if (values['skip-damaged'] && values.stream)
      throw new ValidationError('--skip-damaged reads the whole log; it takes no --stream');
    const from = positiveInt(values.from, '--from');
    const limit = positiveInt(values.limit, '--limit');
    const store = await openStore(values, io, 'existing');
    try {
      const opts = { from: from === undefined ? undefined : BigInt(from), maxCount: limit };
      let skipped = 0;
      const onDamaged = (d: DamagedEvent): void => {
        skipped++;
        io.stderr.write(
          `swf events: skipped the damaged event at position ${d.position} (id ${d.id}, stream ${d.stream}): ${d.reason}\n`,
        );
      };
      const events = values.stream
        ? store.readStream(values.stream, opts)
        : store.readAll(values['skip-damaged'] ? { ...opts, onDamaged } : opts);
      for await (const e of events) {
        if (values.json) {
          io.stdout.write(
            toJson({
              position: e.position,
              streamName: e.streamName,
              revision: e.revision,
              type: e.type,
              data: e.data,
              metadata: e.metadata,
              recordedAt: e.recordedAt.toISOString(),
            }) + '\n',
          );
        } else {
          io.stdout.write(`${e.position}\t${e.streamName}@${e.revision}\t${e.type}\t${toJson(e.data)}\n`);
        }
      }
      if (skipped > 0) io.stderr.write(`swf events: ${skipped} damaged event(s) skipped\n`);
    } finally {
      await store.close();
    }
    return 0;
  },
};
