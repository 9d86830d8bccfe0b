import { ValidationError } from '../../errors.js';
import { exportRun } from '../../replay/bundle.js';
import type { Command } from '../context.js';
import { openStore, parse, STORE_OPTION } from '../context.js';

const usage = 'swf export RUN [--skip-damaged] [--store URL] > run.ndjson';

const options = { ...STORE_OPTION, 'skip-damaged': { type: 'boolean' } } as const;

export const exportCommand: Command = {
  name: 'export',
  summary: "write a run's events, configuration and machine definitions as an NDJSON bundle to stdout",
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          'Line 1: {"format":"swf-es-run-bundle","version":1,"run_number","execution_id","namespace","machine_hash","events":N};\n' +
          'then one event a line (id, streamName, type, data, metadata, revision, position, recordedAt), in log order:\n' +
          "the run's streams, its workers' events, its execution stream (parameter_values, machine_definitions),\n" +
          "its counter events and the agents' heartbeats and logs carrying its execution id. `swf import` loads it.\n" +
          '--skip-damaged leaves out events whose stored bytes were damaged, naming each on stderr (the bundle then\n' +
          'misses them, and `swf import` refuses a stream with a gap).\n',
      );
      return 0;
    }
    if (positionals.length !== 1) throw new ValidationError(`expected one RUN number; usage: ${usage}`);
    const store = await openStore(values, io, 'existing');
    try {
      await exportRun(
        store,
        positionals[0]!,
        (chunk) => io.stdout.write(chunk),
        values['skip-damaged']
          ? {
              onDamaged: (d) =>
                io.stderr.write(
                  `swf export: left out the damaged event at position ${d.position} (id ${d.id}, stream ${d.stream}): ${d.reason}\n`,
                ),
            }
          : {},
      );
      return 0;
    } finally {
      await store.close();
    }
  },
};
