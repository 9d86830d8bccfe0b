/**
 * A fast parse of the three types that make up most of a run's log (a slice, its result, a worker taking it).
 * Readers that only fold (the projections, time travel, an agent reading back its own messages) use it before
 * the full schema.
 */
import type { ParsedEvent } from './parse.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** One object for every test: a regular expression literal is a new object each time it is evaluated. */
const RUN_ID = /^[0-9]{1,15}$/;
const isRunId = (v: unknown): v is string => typeof v === 'string' && RUN_ID.test(v);
const hasEnvelope = (d: Record<string, unknown>): boolean =>
  isText(d.namespace) && isText(d.sender) && isText(d.execution_id) && isRunId(d.run_id) && isText(d.created_at);

/**
 * The three types that make up most of a run's log (a slice, its result, a worker taking it), checked by hand for
 * exactly the fields the projections read: zod costs more per event than everything else the projection does with
 * them. Anything that does not pass goes through the full schema (which then says what is wrong).
 */
export function fastParse(e: { type: string; data: unknown }): ParsedEvent | undefined {
  const d = e.data;
  if (!isRecord(d)) return undefined;
  switch (e.type) {
    case 'slice': {
      const c = d.content;
      if (d.msg_type !== 'slice' || !hasEnvelope(d) || !isRecord(c)) return undefined;
      const ok =
        isText(c.tf_filename) &&
        isText(c.fastmon_file) &&
        isText(c.filename) &&
        isText(c.req_id) &&
        isCount(c.slice_id) &&
        isCount(c.start) &&
        isCount(c.end) &&
        isCount(c.tf_count) &&
        c.tf_count === c.end - c.start + 1 &&
        isCount(c.attempt) &&
        c.attempt >= 1 &&
        c.run_id === d.run_id &&
        c.execution_id === d.execution_id;
      return ok ? ({ kind: 'message', type: 'slice', message: d } as unknown as ParsedEvent) : undefined;
    }
    case 'slice_result': {
      const c = d.content;
      if (d.msg_type !== 'slice_result' || !hasEnvelope(d) || !isRecord(c)) return undefined;
      const r = c.result;
      const ok =
        isText(c.tf_filename) &&
        isCount(c.slice_id) &&
        isCount(c.attempt) &&
        c.attempt >= 1 &&
        (c.state === 'done' || c.state === 'failed') &&
        (r === undefined ||
          r === null ||
          (isRecord(r) && (r.error === undefined || r.error === null || typeof r.error === 'string')));
      return ok ? ({ kind: 'message', type: 'slice_result', message: d } as unknown as ParsedEvent) : undefined;
    }
    case 'SliceProcessingStarted': {
      const ok =
        isText(d.tf_filename) &&
        isText(d.fastmon_file) &&
        isText(d.worker) &&
        isText(d.started_at) &&
        isText(d.lease_deadline) &&
        isCount(d.attempt) &&
        d.attempt >= 1 &&
        isCount(d.slice_id) &&
        isRunId(d.run_id) &&
        isText(d.execution_id) &&
        isText(d.namespace);
      return ok ? ({ kind: 'domain', type: 'SliceProcessingStarted', data: d } as unknown as ParsedEvent) : undefined;
    }
    default:
      return undefined;
  }
}
