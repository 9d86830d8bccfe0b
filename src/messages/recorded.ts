/**
 * Messages the gateway recorded from the real testbed's broker, read as swf-es messages: the body is kept as
 * received (testbed profile); what it leaves out comes from the event's metadata, which the gateway filled in
 * from the frame's headers and what it had recorded before (docs/broker.md, "Recorded runs").
 */
import { ValidationError } from '../errors.js';
import type { Message, TestbedMessage } from './schemas.js';

const NAIVE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)$/;
const AWARE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})$/;

/**
 * A testbed timestamp as ISO-8601 UTC with `Z` (millisecond precision), or undefined when it is not one.
 *
 * The rule for naive timestamps: they are UTC. The fast processing agent and the transformers write
 * `datetime.utcnow()` (naive UTC); the DAQ simulator writes `datetime.now()` (naive local), so it agrees only on
 * hosts that run in UTC, as the testbed's hosts (and the captured run) do. Guessing a zone per sender would make
 * the same bytes mean different instants depending on who we think sent them.
 */
export function testbedTimeToIso(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const naive = NAIVE.exec(value);
  const aware = naive ? undefined : AWARE.exec(value);
  if (!naive && !aware) return undefined;
  const m = (naive ?? aware)!;
  const zone = aware ? (m[3] === 'Z' ? 'Z' : m[3]!.replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')) : 'Z';
  // Date parses at most milliseconds; Python writes microseconds.
  const time = m[2]!.replace(/(\.\d{3})\d+$/, '$1');
  const ms = Date.parse(`${m[1]}T${time}${zone}`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** Like `testbedTimeToIso`, but a clear error for a value that is not a timestamp. */
export function requireTestbedTime(value: unknown, field: string): string {
  const iso = testbedTimeToIso(value);
  if (iso === undefined) {
    throw new ValidationError(`${field} must be an ISO-8601 timestamp, got ${JSON.stringify(value)}`, { field });
  }
  return iso;
}

/** What the gateway matched a `slice_result` to: the slice whose `created_at` its `requested_at` copies. */
export interface SliceMatch {
  run_id: string;
  execution_id: string;
  tf_filename: string;
  fastmon_file: string;
  slice_id: number;
  attempt: number;
}

/** The metadata of an event the gateway recorded from the broker (beside the envelope's usual fields). */
export interface BrokerRecordMetadata {
  origin: 'broker';
  namespace?: string;
  /** The execution of the run, when the body has none (slices the real agent cut after `end_run`). */
  executionId?: string;
  broker?: { messageId?: string; receivedAt?: string; headers?: Record<string, string> };
  match?: SliceMatch;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a stored event came from the broker (and so holds a testbed body). */
export const isBrokerRecorded = (metadata: unknown): metadata is BrokerRecordMetadata =>
  isRecord(metadata) && metadata.origin === 'broker';

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** `<stf stem>_tf_NNN.tf` from `<stf stem>_tf_NNN_slice_MMM.tf` (naming.ts's rule, read backwards). */
const sampleOf = (sliceName: string): string => sliceName.replace(/_slice_\d+(\.tf)$/, '$1');

/**
 * A recorded testbed message as the swf-es message the agents and projections read. Throws `ValidationError`
 * when it cannot be one: no namespace, no execution known for its run, a result the gateway matched to no slice.
 */
export function messageFromTestbed(body: TestbedMessage, metadata: BrokerRecordMetadata): Message {
  const b = body as Record<string, unknown>;
  const content = isRecord(b.content) ? b.content : undefined;
  const what = `recorded ${String(b.msg_type)}`;
  const namespace = text(b.namespace) ?? text(metadata.namespace);
  if (namespace === undefined) throw new ValidationError(`${what} has no namespace`, { field: 'namespace' });
  const headers = metadata.broker?.headers ?? {};
  const sender = text(b.sender) ?? text(b.processed_by) ?? text(headers['client-id']) ?? 'testbed';
  const receivedAt = testbedTimeToIso(metadata.broker?.receivedAt);
  const created_at = testbedTimeToIso(b.created_at) ?? testbedTimeToIso(b.timestamp) ?? receivedAt;
  if (created_at === undefined) throw new ValidationError(`${what} has no time`, { field: 'created_at' });
  const match = metadata.match;
  const execution_id =
    text(b.execution_id) ?? text(content?.execution_id) ?? text(metadata.executionId) ?? text(match?.execution_id);
  if (execution_id === undefined) {
    throw new ValidationError(`${what} of run ${String(b.run_id)} has no execution id, and no run_imminent named one`, {
      field: 'execution_id',
    });
  }
  const out: Record<string, unknown> = { ...b, namespace, sender, execution_id, created_at };
  if (typeof b.timestamp === 'string') out.timestamp = testbedTimeToIso(b.timestamp) ?? created_at;
  switch (body.msg_type) {
    case 'slice': {
      const c = content!;
      out.content = {
        ...c,
        execution_id,
        fastmon_file: text(c.fastmon_file) ?? sampleOf(String(c.tf_filename)),
        attempt: typeof c.attempt === 'number' ? c.attempt : 1,
      };
      break;
    }
    case 'slice_result': {
      if (!match) {
        throw new ValidationError(
          `recorded slice_result matches no slice (run_id ${JSON.stringify(b.run_id)}, requested_at ${JSON.stringify(content?.requested_at ?? null)})`,
          { field: 'content.requested_at' },
        );
      }
      out.run_id = match.run_id;
      out.content = {
        ...content,
        tf_filename: match.tf_filename,
        slice_id: match.slice_id,
        attempt: match.attempt,
      };
      break;
    }
    case 'run_imminent_worker':
    case 'end_run':
      if (content) out.content = { ...content, execution_id };
      break;
    default:
      break;
  }
  return out as unknown as Message;
}
