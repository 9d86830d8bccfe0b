import { belongsToRun, checkConformance, CONFORMANCE_RULES, hasReportedRunState } from '../../broker/conformance.js';
import { replayRun } from '../../replay/timeTravel.js';
import type { StoredEvent } from '../../eventStore/eventStore.js';
import { isNotFoundError, NotFoundError, ValidationError } from '../../errors.js';
import type { Command } from '../context.js';
import { openStore, parse, STORE_OPTION, toJson } from '../context.js';

const usage = 'swf conformance RUN [--json] [--store URL]';

const options = { ...STORE_OPTION, json: { type: 'boolean' } } as const;

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: "check a recorded real run against the workflow's rules, message by message (exit 1 on a rule broken)",
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nFolds the run's messages (as the gateway recorded them from the broker, or as swf-es wrote them)\n` +
          "through swf-es's rules and lists each message that broke one. Exit 0: none broken; 1: some; 3: no such run.\n\nRules:\n" +
          Object.entries(CONFORMANCE_RULES)
            .map(([k, v]) => `  ${k.padEnd(20)} ${v}`)
            .join('\n') +
          '\n',
      );
      return 0;
    }
    const [arg, ...rest] = positionals;
    if (arg === undefined || rest.length > 0) throw new ValidationError(`name one run; usage: ${usage}`);
    if (!/^[0-9]{1,15}$/.test(arg))
      throw new ValidationError(`RUN must be a run number, got '${arg}'`, { field: 'run' });
    const run = Number(arg);
    const store = await openStore(values, io, 'existing');
    const events: StoredEvent[] = [];
    let derived: Record<string, unknown> | undefined;
    try {
      // The run's messages, and results recorded without a run while the run was on (they match nothing).
      const orphans: StoredEvent[] = [];
      for await (const e of store.readAll()) {
        if (belongsToRun(e, run)) events.push(e);
        else if (e.type === 'slice_result' && (e.metadata as { runNumber?: unknown } | null)?.runNumber === undefined)
          orphans.push(e);
      }
      const first = events[0]?.position;
      const last = events[events.length - 1]?.position;
      if (first !== undefined && last !== undefined) {
        events.push(...orphans.filter((o) => o.position > first && o.position < last));
      }
      // An agent reported the run's RunState over REST: set what the messages imply beside it.
      if (hasReportedRunState(events)) {
        try {
          derived = (await replayRun(store, run)).run_state;
        } catch (e: unknown) {
          if (!isNotFoundError(e)) throw e;
        }
      }
    } finally {
      await store.close();
    }
    events.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    const report = checkConformance(events, run, derived);
    if (report.messages === 0) throw new NotFoundError(`no messages of run ${run} in this store`);
    if (values.json) {
      io.stdout.write(`${toJson(report)}\n`);
    } else {
      const n = report.findings.length;
      io.stdout.write(`run ${run}: ${report.messages} messages, ${n === 0 ? 'no rule broken' : `${n} rule breaks`}\n`);
      for (const [rule, count] of Object.entries(report.counts)) {
        io.stdout.write(
          `  ${rule.padEnd(20)} ${String(count).padStart(5)}  ${CONFORMANCE_RULES[rule as keyof typeof CONFORMANCE_RULES]}\n`,
        );
      }
      for (const f of report.findings) {
        io.stdout.write(`position ${f.position}  ${f.msg_type}  ${f.rule}: ${f.detail}\n`);
      }
    }
    return report.findings.length > 0 ? 1 : 0;
  },
};
