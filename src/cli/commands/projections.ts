import { ValidationError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { openViews, type Views } from '../../projections/views.js';
import type { Command, Io } from '../context.js';
import { makeLogger, openStore, parse, STORE_OPTION, toJson } from '../context.js';

export const VIEWS_OPTION = { views: { type: 'string' } } as const;

export const VIEWS_HELP =
  '  --views PATH   the read models (default: beside a sqlite store as <name>.views.db, else ./swf-data/views.db)\n';

/** The store and its views, for the readers (`monitor`, `mcp`, `runs`, `projections`). */
export async function openReadSide(
  values: { store?: string | undefined; views?: string | undefined },
  io: Io,
  use: 'create' | 'existing' = 'existing',
  storeOptions: { durable?: boolean } = {},
): Promise<{ store: EventStore; views: Views; close(): Promise<void> }> {
  const store = await openStore(values, io, use, storeOptions);
  let views: Views;
  try {
    views = await openViews(store, {
      ...(values.views !== undefined ? { path: values.views } : {}),
      cwd: io.cwd,
      logger: makeLogger(io),
    });
  } catch (e: unknown) {
    await store.close();
    throw e;
  }
  return {
    store,
    views,
    async close() {
      await views.close();
      await store.close();
    },
  };
}

const usage = 'swf projections rebuild|status [--views PATH] [--json] [--store URL]';

const options = { ...STORE_OPTION, ...VIEWS_OPTION, json: { type: 'boolean' } } as const;

export const projectionsCommand: Command = {
  name: 'projections',
  summary: "rebuild the monitor's read models from the log, or show how far they are",
  usage,
  options,
  subcommands: ['rebuild', 'status'],
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          '  rebuild   drop every read model and fold the whole log again (safe while a monitor runs: it follows)\n' +
          "  status    each projection's checkpoint against the log's last position\n\n" +
          VIEWS_HELP,
      );
      return 0;
    }
    const sub = positionals[0];
    if ((sub !== 'rebuild' && sub !== 'status') || positionals.length > 1) {
      throw new ValidationError(`unknown projections subcommand; usage: ${usage}`);
    }
    const side = await openReadSide(values, io);
    try {
      if (sub === 'rebuild') {
        const r = await side.views.projector.rebuild();
        const out = { views: side.views.path, events: r.events, position: r.position, seconds: r.ms / 1000 };
        io.stdout.write(
          values.json
            ? `${toJson(out)}\n`
            : `rebuilt ${side.views.path} from ${r.events} events (up to position ${r.position}) in ${(r.ms / 1000).toFixed(2)} s\n`,
        );
      } else {
        const head = (await side.store.headPosition()) ?? 0n;
        const rows = side.views.db
          .prepare<{ name: string; position: number }>(
            'SELECT name, position FROM projection_checkpoints ORDER BY name',
          )
          .all();
        const out = {
          views: side.views.path,
          head,
          projections: rows.map((r) => ({ name: r.name, position: r.position, behind: Number(head) - r.position })),
        };
        if (values.json) io.stdout.write(`${toJson(out)}\n`);
        else {
          io.stdout.write(`views ${side.views.path}; log at position ${head}\n`);
          for (const p of out.projections)
            io.stdout.write(`  ${p.name.padEnd(10)} ${p.position}${p.behind > 0 ? ` (${p.behind} behind)` : ''}\n`);
        }
      }
    } finally {
      await side.close();
    }
    return 0;
  },
};
