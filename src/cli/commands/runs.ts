import { ValidationError } from '../../errors.js';
import { list, sliceCounts } from '../../projections/queries.js';
import type { Command } from '../context.js';
import { parse, STORE_OPTION, toJson } from '../context.js';
import { openReadSide, VIEWS_HELP, VIEWS_OPTION } from './projections.js';

const usage = 'swf runs [--json] [--views PATH] [--store URL]';

const options = { ...STORE_OPTION, ...VIEWS_OPTION, json: { type: 'boolean' } } as const;

export const runsCommand: Command = {
  name: 'runs',
  summary: 'list workflow executions and their runs, with phase and counts',
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nExecutions newest first, each with its runs: RunState phase, STFs, samples and slices by status.\n` +
          `The read models catch up with the log first, so a run that just ended is complete here.\n\n${VIEWS_HELP}`,
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    const side = await openReadSide(values, io);
    try {
      await side.views.ready();
      const db = side.views.db;
      const states = new Map(list(db, 'runStates').rows.map((r) => [r.run_number as number, r]));
      const executions = list(db, 'executions').rows.map((e) => ({
        execution_id: e.execution_id as string,
        workflow_name: e.workflow_name,
        namespace: e.namespace,
        status: e.status,
        executed_by: e.executed_by,
        start_time: e.start_time as string,
        end_time: e.end_time as string | null,
        runs: (e.run_numbers as number[]).map((n) => {
          const s = states.get(n) ?? {};
          const count = (key: string): number => (typeof s[key] === 'number' ? s[key] : 0);
          return {
            run_number: n,
            phase: typeof s.phase === 'string' ? s.phase : 'initializing',
            finished: s.finished === true,
            stf_files: count('stf_files'),
            stf_samples_received: count('stf_samples_received'),
            slices_created: count('slices_created'),
            slices_queued: count('slices_queued'),
            slices_processing: count('slices_processing'),
            slices_completed: count('slices_completed'),
            slices_failed: count('slices_failed'),
            slices_retried: count('slices_retried'),
            // Data taking ended (phase completed) but the run is not finished: the slices still to process.
            processing_slices:
              s.finished === true
                ? 0
                : Math.max(0, count('slices_created') - count('slices_completed') - count('slices_failed')),
            slice_rows: sliceCounts(db, n),
          };
        }),
      }));
      if (values.json) {
        io.stdout.write(`${toJson({ executions })}\n`);
        return 0;
      }
      if (executions.length === 0) {
        io.stdout.write('no workflow executions in this store yet (swf run starts one)\n');
        return 0;
      }
      for (const e of executions) {
        io.stdout.write(
          `${e.execution_id}  ${String(e.status)}  ${String(e.namespace)}  started ${String(e.start_time)}${e.end_time ? `  ended ${e.end_time}` : ''}\n`,
        );
        if (e.runs.length === 0) io.stdout.write('  (no run yet)\n');
        for (const r of e.runs) {
          io.stdout.write(
            `  run ${r.run_number}  ${r.phase}${r.finished ? ' (finished)' : r.phase === 'completed' ? ` (data taking ended, processing ${r.processing_slices} slices)` : ''}  STFs ${r.stf_files}  samples ${r.stf_samples_received}  ` +
              `slices ${r.slices_created}: ${r.slices_queued} queued, ${r.slices_processing} processing, ` +
              `${r.slices_completed} completed, ${r.slices_failed} failed (${r.slices_retried} retries)\n`,
          );
        }
      }
    } finally {
      await side.close();
    }
    return 0;
  },
};
