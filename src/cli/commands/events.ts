import { belongsToRun } from '../../broker/conformance.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { DamagedEvent, EventStore, StoredEvent, Subscription } from '../../eventStore/eventStore.js';
import { streams } from '../../messages/index.js';
import { didYouMean } from '../../suggest.js';
import type { Command, Io } from '../context.js';
import { openStore, parse, positiveInt, STORE_OPTION, toJson } from '../context.js';

const usage =
  'swf events read [--stream S] [--type T]... [--run N] [--from POS] [--limit N] [--follow] [--json] [--skip-damaged] [--store URL]\n' +
  '       swf events streams [--run N] [--json] [--store URL]';

const options = {
  ...STORE_OPTION,
  stream: { type: 'string' },
  type: { type: 'string', multiple: true },
  run: { type: 'string' },
  from: { type: 'string' },
  limit: { type: 'string' },
  follow: { type: 'boolean' },
  json: { type: 'boolean' },
  'skip-damaged': { type: 'boolean' },
} as const;

const SUBCOMMANDS = ['read', 'streams'] as const;

const help =
  `${usage}\n\n` +
  "read: events in log order, all of them or one stream's (--stream), from a log position or a stream revision\n" +
  '(--from, inclusive), at most --limit. Tab-separated (position, stream@revision, type, data), or with --json one\n' +
  'JSON object per line: position, streamName, revision, type, data, metadata, recordedAt.\n' +
  '  --type T        only events of this type (repeatable: any of them)\n' +
  "  --run N         only run N's events: its run, data, fastmon, fastproc, slices and results streams, and any\n" +
  '                  other event whose payload or metadata names the run (workers, agents, the gateway); a run\n' +
  '                  with no events at all is an error (exit 3), except with --follow\n' +
  '  --follow        after the stored events, print new ones as they are appended, until Ctrl-C (or --limit)\n' +
  '  --skip-damaged  read past events whose stored bytes were damaged, naming each on stderr (without it, one is\n' +
  '                  an error naming the store and its position, exit 5)\n\n' +
  'streams: every stream with its event count, last revision and position, and last event type, in order of\n' +
  'first appearance (with --run N, only the streams holding events of run N).\n';

/** Whether an event is run `run`'s: in one of its streams, or naming the run in its payload or metadata. */
function runFilter(run: string | undefined): ((e: StoredEvent) => boolean) | undefined {
  if (run === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(run))
    throw new ValidationError(`--run must be a run number, got '${run}'`, { field: 'run' });
  const own = new Set([
    streams.run(run),
    streams.data(run),
    streams.fastmon(run),
    streams.fastproc(run),
    streams.slices(run),
    streams.results(run),
  ]);
  const n = Number(run);
  return (e) => own.has(e.streamName) || belongsToRun(e, n);
}

function formatEvent(e: StoredEvent, json: boolean): string {
  if (!json) return `${e.position}\t${e.streamName}@${e.revision}\t${e.type}\t${toJson(e.data)}\n`;
  return (
    toJson({
      position: e.position,
      streamName: e.streamName,
      revision: e.revision,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      recordedAt: e.recordedAt.toISOString(),
    }) + '\n'
  );
}

/** Resolves on the first SIGINT or SIGTERM (Ctrl-C ends `--follow`), then stops listening. */
function untilSignal(): { signalled: Promise<void>; dispose(): void } {
  let resolve: () => void = () => {};
  const signalled = new Promise<void>((r) => (resolve = r));
  const on = (): void => resolve();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return {
    signalled,
    dispose() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

async function follow(
  store: EventStore,
  values: { stream?: string | undefined },
  from: number | undefined,
  wanted: (e: StoredEvent) => boolean,
  limit: number | undefined,
  write: (e: StoredEvent) => void,
): Promise<void> {
  // Subscriptions deliver what comes after `from`; --from is inclusive.
  const after = from === undefined || from === 0 ? ('start' as const) : BigInt(from - 1);
  const sub: Subscription = values.stream
    ? store.subscribeToStream(values.stream, { from: after })
    : store.subscribeToAll({ from: after });
  const stop = untilSignal();
  let printed = 0;
  try {
    const it = sub[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([it.next(), stop.signalled.then(() => undefined)]);
      if (next === undefined || next.done) break;
      if (!wanted(next.value)) continue;
      write(next.value);
      if (limit !== undefined && ++printed >= limit) break;
    }
  } finally {
    stop.dispose();
    await sub.unsubscribe();
  }
}

async function listStreams(store: EventStore, run: string | undefined, json: boolean, io: Io): Promise<void> {
  const inRun = runFilter(run);
  const seen = new Map<string, { events: number; revision: bigint; position: bigint; type: string }>();
  for await (const e of store.readAll()) {
    if (inRun && !inRun(e)) continue;
    const s = seen.get(e.streamName);
    if (s) {
      s.events++;
      s.revision = e.revision;
      s.position = e.position;
      s.type = e.type;
    } else seen.set(e.streamName, { events: 1, revision: e.revision, position: e.position, type: e.type });
  }
  if (run !== undefined && seen.size === 0) throw new NotFoundError(`no events of run ${run} in this store`);
  if (!json && seen.size > 0) io.stdout.write('stream\tevents\tlast revision\tlast position\tlast type\n');
  for (const [name, s] of seen) {
    io.stdout.write(
      json
        ? `${toJson({ streamName: name, events: s.events, lastRevision: s.revision, lastPosition: s.position, lastType: s.type })}\n`
        : `${name}\t${s.events}\t${s.revision}\t${s.position}\t${s.type}\n`,
    );
  }
}

export const eventsCommand: Command = {
  name: 'events',
  summary: 'read the event log (all of it, one stream, one run, by type, live with --follow), or list its streams',
  usage,
  options,
  subcommands: SUBCOMMANDS,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(help);
      return 0;
    }
    const sub = positionals[0];
    if (sub === undefined) throw new ValidationError(`name a subcommand, read or streams; usage: ${usage}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new ValidationError(`unknown events subcommand '${sub}'${didYouMean(sub, SUBCOMMANDS)}; usage: ${usage}`);
    if (positionals.length > 1)
      throw new ValidationError(`unexpected argument '${positionals[1]}' after '${sub}'; usage: ${usage}`);
    if (sub === 'streams') {
      for (const flag of ['stream', 'type', 'from', 'limit', 'follow', 'skip-damaged'] as const)
        if (values[flag] !== undefined)
          throw new ValidationError(
            `swf events streams lists every stream; it takes no --${flag} (swf events read does)`,
          );
      const inRun = values.run;
      const store = await openStore(values, io, 'existing');
      try {
        await listStreams(store, inRun, values.json === true, io);
      } finally {
        await store.close();
      }
      return 0;
    }
    if (values['skip-damaged'] && values.stream)
      throw new ValidationError('--skip-damaged reads the whole log; it takes no --stream');
    if (values['skip-damaged'] && values.follow)
      throw new ValidationError('--skip-damaged reads the stored log once; it takes no --follow');
    const from = positiveInt(values.from, '--from');
    const limit = positiveInt(values.limit, '--limit');
    const inRun = runFilter(values.run);
    const types = values.type;
    for (const t of types ?? [])
      if (t === '') throw new ValidationError('--type needs an event type, e.g. --type stf_ready', { field: 'type' });
    const wanted = (e: StoredEvent): boolean => (!types || types.includes(e.type)) && (!inRun || inRun(e));
    const json = values.json === true;
    // Following, other processes append: a store not there yet is created, as for the agents.
    const store = await openStore(values, io, values.follow ? 'create' : 'existing');
    try {
      if (limit === 0) return 0;
      if (values.follow) {
        await follow(store, values, from, wanted, limit, (e) => io.stdout.write(formatEvent(e, json)));
        return 0;
      }
      // Without a filter, --limit is pushed down to the store; with one, it counts the events printed. The store
      // narrows by type prefix; `wanted` keeps the exact types.
      const opts = {
        from: from === undefined ? undefined : BigInt(from),
        maxCount: types || inRun ? undefined : limit,
        ...(types && !values.stream ? { filter: { eventTypePrefix: types } } : {}),
      };
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
      let printed = 0;
      // A run with no event at all is named as unknown (not an empty answer); with --type (filtered in the store),
      // --from or --stream the run's other events are not read, so nothing is said.
      let runSeen = false;
      for await (const e of events) {
        if (inRun && !runSeen && inRun(e)) runSeen = true;
        if (!wanted(e)) continue;
        io.stdout.write(formatEvent(e, json));
        if (limit !== undefined && ++printed >= limit) break;
      }
      if (skipped > 0) io.stderr.write(`swf events: ${skipped} damaged event(s) skipped\n`);
      if (inRun && !runSeen && !types && from === undefined && !values.stream)
        throw new NotFoundError(`no events of run ${values.run} in this store`);
    } finally {
      await store.close();
    }
    return 0;
  },
};
