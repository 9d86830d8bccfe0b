/**
 * Conformance of a recorded real run: its messages folded through swf-es's rules, listing message by message
 * where the real agents broke them (docs/broker.md, "Conformance"). Pure: events in, findings out.
 */
import type { StoredEvent } from '../eventStore/eventStore.js';
import { fastRun } from '../machines/registry.js';
import { runEventOf } from '../machines/run.js';
import { isMessageType, safeParseMessage } from '../messages/index.js';
import { runStateDifferences } from '../projections/testbedRecords.js';

export const CONFORMANCE_RULES = {
  'lifecycle-refused': 'a DAQ lifecycle message the run machine refuses where the run stands',
  'slice-after-end-run': 'a slice sent after the fast processing agent told the workers the run ended (its end_run)',
  'slice-null-execution': 'a slice whose execution_id is null',
  'slice-repeated': 'a slice sent again for an attempt already sent',
  'failed-not-retried': 'a failed slice never sent again (the workflow retries up to max_slice_retries)',
  'result-unmatched': 'a slice_result that matches no slice of the run',
  'result-after-final': 'a slice_result for a slice that already had its final result',
  'stf-ready-unchecked': 'an stf_ready without checksum or size_bytes',
  'body-profile':
    "a body that lacks what swf-es's own messages carry (namespace, sender, execution_id, UTC created_at)",
  'runstate-reported-differs':
    "the RunState an agent last reported over REST differs from what the run's messages imply (both are kept)",
} as const;
export type ConformanceRule = keyof typeof CONFORMANCE_RULES;

export interface Finding {
  rule: ConformanceRule;
  /** The log position of the message (a JSON number). */
  position: number;
  event_id: string;
  msg_type: string;
  detail: string;
}

export interface ConformanceReport {
  run_number: number;
  messages: number;
  findings: Finding[];
  /** Findings per rule. */
  counts: Partial<Record<ConformanceRule, number>>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const META = (e: StoredEvent): Record<string, unknown> => (isRecord(e.metadata) ? e.metadata : {});

/** What an agent reports of a run's RunState over REST (the testbed write API). */
const REPORTS = new Set(['RunStateReported', 'RunStateUpdateReported']);

/** Whether the run's events hold a RunState an agent reported (then the check wants the derived one beside it). */
export const hasReportedRunState = (events: readonly StoredEvent[]): boolean => events.some((e) => REPORTS.has(e.type));

const LIFECYCLE = new Set(['run_imminent', 'start_run', 'stf_gen', 'pause_run', 'resume_run']);

/** Whether a stored event is a message of `run` (by body, content or the gateway's match/metadata). */
export function belongsToRun(e: StoredEvent, run: number): boolean {
  const d = isRecord(e.data) ? e.data : {};
  const c = isRecord(d.content) ? d.content : {};
  const m = META(e);
  const raw = d.run_id ?? c.run_id ?? m.runNumber;
  return String(raw) === String(run);
}

/**
 * Checks the messages of one recorded run, in log order. `events` are the run's events (see `belongsToRun`) and
 * any recorded `slice_result` without a run, which the check reports as matching nothing.
 */
export function checkConformance(
  events: readonly StoredEvent[],
  run: number,
  /** What the run's messages imply as its RunState (time travel's fold to the end), to set the reports beside. */
  derived?: Record<string, unknown>,
): ConformanceReport {
  const findings: Finding[] = [];
  const add = (e: StoredEvent, rule: ConformanceRule, detail: string): void => {
    findings.push({ rule, position: Number(e.position), event_id: e.id, msg_type: e.type, detail });
  };
  let snapshot = fastRun.initial();
  let endRunAt: number | undefined;
  /** tf_filename → the attempts sent, and the state of its last result. */
  const slices = new Map<
    string,
    { attempts: Set<number>; lastAttempt: number; final?: 'done' | 'failed'; event: StoredEvent }
  >();
  let messages = 0;
  let lastReport: StoredEvent | undefined;
  const profileIssues = new Map<string, { first: StoredEvent; n: number }>();

  for (const e of events) {
    if (REPORTS.has(e.type)) lastReport = e;
    if (e.type === 'SliceProcessingStarted' || e.type === 'WorkflowExecutionStarted') continue;
    const d = isRecord(e.data) ? e.data : undefined;
    if (!d || typeof d.msg_type !== 'string') continue;
    messages++;
    const c = isRecord(d.content) ? d.content : {};
    const own = isMessageType(e.type) ? safeParseMessage(d) : undefined;
    if (own && !own.success && own.error.details.field !== undefined) {
      const key = `${e.type}: ${own.error.details.field}`;
      const seen = profileIssues.get(key);
      if (seen) seen.n++;
      else profileIssues.set(key, { first: e, n: 1 });
    }
    if (LIFECYCLE.has(e.type) || (e.type === 'end_run' && d.content === undefined)) {
      const event = runEventOf({ ...d, msg_type: e.type });
      if (event) {
        const after = fastRun.next(snapshot, event);
        if (after.context.refusals !== snapshot.context.refusals) {
          const r = after.context.lastRefusal;
          add(e, 'lifecycle-refused', r ? `${r.event} refused in ${r.state}: ${r.reason}` : 'refused');
        }
        snapshot = after;
      }
      continue;
    }
    // The workers' end_run: the fast processing agent has handled the DAQ's and told the workers the run is over.
    if (e.type === 'end_run') {
      endRunAt ??= Number(e.position);
      continue;
    }
    switch (e.type) {
      case 'stf_ready':
        if (d.checksum == null || d.size_bytes == null) {
          add(
            e,
            'stf-ready-unchecked',
            `${String(d.filename)}: checksum ${JSON.stringify(d.checksum ?? null)}, size_bytes ${JSON.stringify(d.size_bytes ?? null)}`,
          );
        }
        break;
      case 'slice': {
        const name = String(c.tf_filename);
        const attempt = typeof c.attempt === 'number' ? c.attempt : 1;
        if (endRunAt !== undefined) add(e, 'slice-after-end-run', `${name} sent after end_run (position ${endRunAt})`);
        if (c.execution_id === null) add(e, 'slice-null-execution', `${name} has execution_id null`);
        const s = slices.get(name);
        if (!s) {
          slices.set(name, { attempts: new Set([attempt]), lastAttempt: attempt, event: e });
        } else if (s.attempts.has(attempt)) {
          add(e, 'slice-repeated', `${name} attempt ${attempt} sent again`);
        } else {
          s.attempts.add(attempt);
          s.lastAttempt = attempt;
          delete s.final;
          s.event = e;
        }
        break;
      }
      case 'slice_result': {
        const match = isRecord(META(e).match) ? (META(e).match as { tf_filename?: unknown }) : undefined;
        const name =
          typeof c.tf_filename === 'string'
            ? c.tf_filename
            : typeof match?.tf_filename === 'string'
              ? match.tf_filename
              : undefined;
        const s = name !== undefined ? slices.get(name) : undefined;
        if (!s) {
          add(
            e,
            'result-unmatched',
            `run_id ${JSON.stringify(d.run_id ?? null)}, requested_at ${JSON.stringify(c.requested_at ?? null)}, state ${String(c.state)}`,
          );
          break;
        }
        if (s.final !== undefined) {
          add(e, 'result-after-final', `${name}: ${String(c.state)} after ${s.final}`);
          break;
        }
        s.final = c.state === 'done' ? 'done' : 'failed';
        break;
      }
      default:
        break;
    }
  }
  for (const [name, s] of slices) {
    if (s.final === 'failed')
      add(s.event, 'failed-not-retried', `${name} failed at attempt ${s.lastAttempt} and was not sent again`);
  }
  for (const [key, { first, n }] of profileIssues) {
    add(first, 'body-profile', `${key} (${n} message${n === 1 ? '' : 's'}, the first here)`);
  }
  const reported = lastReport && isRecord(lastReport.data) ? lastReport.data.record : undefined;
  if (lastReport && derived && isRecord(reported)) {
    const differences = runStateDifferences(reported, derived);
    if (differences.length > 0)
      add(
        lastReport,
        'runstate-reported-differs',
        differences
          .map(
            (d) => `${d.field} reported ${JSON.stringify(d.reported)}, the messages imply ${JSON.stringify(d.derived)}`,
          )
          .join('; '),
      );
  }
  findings.sort((a, b) => a.position - b.position || a.rule.localeCompare(b.rule));
  const counts: Partial<Record<ConformanceRule, number>> = {};
  for (const f of findings) counts[f.rule] = (counts[f.rule] ?? 0) + 1;
  return { run_number: run, messages, findings, counts };
}
