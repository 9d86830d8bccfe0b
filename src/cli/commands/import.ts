import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ValidationError } from '../../errors.js';
import { importBundle, parseBundle } from '../../replay/bundle.js';
import type { Command } from '../context.js';
import { openStore, parse, STORE_OPTION, toJson } from '../context.js';

const usage = 'swf import FILE [--renumber] [--json] [--store URL]';

const options = { ...STORE_OPTION, renumber: { type: 'boolean' }, json: { type: 'boolean' } } as const;

export const importCommand: Command = {
  name: 'import',
  summary: 'load a run bundle (swf export) into the store: all of it or nothing',
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          'Validates the whole file first (header, every line, every event), then writes it in one commit, so a\n' +
          'damaged or foreign file, or a run number or execution id the store already holds, stores nothing.\n' +
          "  --renumber   give the run the store's next run number and execution id: run ids, file names\n" +
          '               (swf.<run>.<seq>…), stream names, metadata and event ids are rewritten consistently (for a store\n' +
          '               that already holds the run). The data agent and FastMon key checksums and samples by file name,\n' +
          '               so `swf replay --check` of a renumbered run reports those; time travel and what-if work.\n',
      );
      return 0;
    }
    if (positionals.length !== 1) throw new ValidationError(`expected one FILE; usage: ${usage}`);
    const path = resolve(io.cwd, positionals[0]!);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e: unknown) {
      throw new ValidationError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const bundle = parseBundle(text, path);
    const store = await openStore(values, io);
    try {
      const result = await importBundle(store, bundle, { renumber: values.renumber === true });
      io.stdout.write(
        values.json
          ? toJson(result) + '\n'
          : `imported run ${result.run_number} (execution ${result.execution_id})${result.renumbered_from ? ` renumbered from run ${result.renumbered_from.run_number} (execution ${result.renumbered_from.execution_id})` : ''}: ${result.events} events in ${result.streams} streams into ${store.url}\n`,
      );
      return 0;
    } finally {
      await store.close();
    }
  },
};
