import { ValidationError } from '../../errors.js';
import { checkRun, formatCheck } from '../../replay/check.js';
import { locateRun } from '../../replay/runEvents.js';
import { formatReplay, parseReplayPoint, replayRun } from '../../replay/timeTravel.js';
import { formatWhatIf, whatIf } from '../../replay/whatIf.js';
import { inspectorFor, type RunInspector, takeInspectOption } from '../../replay/inspect.js';
import { parseSpeed } from './run.js';
import { openEventStore } from '../../eventStore/open.js';
import type { Command } from '../context.js';
import { makeLogger, openStore, parse, STORE_OPTION, toJson } from '../context.js';

const usage =
  'swf replay RUN [--at POSITION|ISO-TIME] [--check [--recorded-machines]] [--set section.key=value]... [--json] [--inspect [URL] [--speed N]] [--store URL]';

const options = {
  ...STORE_OPTION,
  at: { type: 'string' },
  check: { type: 'boolean' },
  'recorded-machines': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  speed: { type: 'string' },
} as const;

export const replayCommand: Command = {
  name: 'replay',
  summary: "fold a run's events up to a point and print its views (time travel), or check its determinism",
  usage,
  options,
  async run(argv, io) {
    const taken = takeInspectOption(argv);
    const { values, positionals } = parse(taken.argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          "Folds the run's events from the log (its run, data, fastmon, fastproc and slices streams, its workers' events\n" +
          'and its execution stream) through the fast processing agent and prints the run as it stood then.\n\n' +
          '  --at POSITION   stop after this log position (inclusive)\n' +
          "  --at ISO-TIME   stop before the first event stamped later by the workflow clock (the events' own\n" +
          '                  created_at/timestamp/started_at/..., not when the store recorded them)\n' +
          "  --check         re-feed the data, FastMon and fast processing agents the recorded inputs with the run's\n" +
          '                  recorded configuration and compare their outputs with the recorded ones; exit 1 on the\n' +
          "                  first divergence (a run recorded from the testbed's broker has no swf-es decisions to\n" +
          '                  recompute: exit 2; swf conformance RUN lists its rule breaks)\n' +
          '  --recorded-machines  with --check, fold with the machine definitions the run recorded (its\n' +
          "                  machine_hash) instead of today's; without it, today's rules, and a changed hash is reported\n" +
          "  --set s.k=v     what-if: drive the run's recorded DAQ announcements (at their recorded times) through\n" +
          "                  today's agents and workers in virtual time on a scratch memory: store, with the run's\n" +
          '                  recorded configuration and these overrides (TOML value syntax, repeatable), and print\n' +
          '                  the outcome (slices created/completed/failed, retries, duration) beside the recorded one\n' +
          '  --json          one JSON object (run_number, position, run_state, slices, ...; with --set:\n' +
          '                  {recorded, what_if, difference, overrides, ...})\n' +
          "  --inspect [URL]  send the run machine's transitions to a Stately inspector (WebSocket, default\n" +
          '                  ws://localhost:8080; without a URL, says how to open one): the recorded run played back,\n' +
          '                  or with --set the what-if run as it happens\n' +
          '  --speed N       with --inspect, play the recorded run back at N times its clock speed (default: as fast\n' +
          '                  as possible)\n\n' +
          'Exit codes: 0 ok, 1 the check found a divergence, 2 bad arguments, 3 unknown run, 6 (--check) the run\n' +
          'never finished: what was recorded is deterministic, and it names the inputs whose outputs are missing.\n',
      );
      return 0;
    }
    if (positionals.length !== 1) throw new ValidationError(`expected one RUN number; usage: ${usage}`);
    if (values['recorded-machines'] && !values.check)
      throw new ValidationError('--recorded-machines chooses the rules for --check; give --check too');
    if (values.check && values.at !== undefined)
      throw new ValidationError('--check replays the whole run; it takes no --at');
    const sets = values.set ?? [];
    if (sets.length > 0 && (values.check || values.at !== undefined))
      throw new ValidationError('--set runs a what-if of the whole run; it takes no --at or --check');
    if (taken.inspect && values.check) throw new ValidationError('--check compares decisions; it takes no --inspect');
    const speed = parseSpeed(values.speed);
    if (speed !== undefined && !taken.inspect)
      throw new ValidationError('--speed paces the playback for --inspect; give --inspect too');
    const point = parseReplayPoint(values.at);
    const store = await openStore(values, io, 'existing');
    let inspector: RunInspector | undefined;
    try {
      const info = await locateRun(store, positionals[0]!);
      inspector = await inspectorFor(taken.inspect, io.stderr);
      const watch = inspector ? { onRunTransition: inspector.onRunTransition } : {};
      if (sets.length > 0) {
        const result = await whatIf(store, info, sets, {
          logger: makeLogger(io),
          scratch: () => openEventStore('memory:'),
          ...watch,
        });
        if (values.json) {
          const { recorded, what_if, difference, ...rest } = result;
          io.stdout.write(toJson({ recorded, what_if, difference, ...rest }) + '\n');
        } else io.stdout.write(formatWhatIf(result));
        return 0;
      }
      if (values.check) {
        // A run the gateway recorded from the real testbed: no swf-es agent decided its messages, so there is no
        // decision to recompute; its rule breaks (a slice sent twice, a result after the final one, ...) are
        // what `swf conformance` lists.
        if ((info.started?.metadata as { derivedFrom?: unknown } | undefined)?.derivedFrom === 'broker') {
          throw new ValidationError(
            `run ${info.run_number} was recorded from the testbed's broker: no swf-es agent decided it, so --check ` +
              `has nothing to recompute; swf conformance ${info.run_number} lists its rule breaks`,
          );
        }
        const result = await checkRun(store, info, { recordedMachines: values['recorded-machines'] === true });
        io.stdout.write(values.json ? toJson(result) + '\n' : formatCheck(result));
        // 6: nothing diverges, but the run never finished (distinct from 1, a divergence).
        return result.ok ? (result.unfinished ? 6 : 0) : 1;
      }
      const view = await replayRun(store, info.run_id, point, info, {
        ...watch,
        ...(speed !== undefined ? { speed } : {}),
      });
      io.stdout.write(values.json ? toJson(view) + '\n' : formatReplay(view));
      return 0;
    } finally {
      await inspector?.stop();
      await store.close();
    }
  },
};
