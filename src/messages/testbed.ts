/**
 * The real testbed's bodies as they arrive from its broker: which message a frame is, and the one rule for the
 * zone of its naive timestamps. docs/broker.md explains both with the captured traffic.
 */
import type { z } from 'zod';
import { ValidationError } from '../errors.js';
import { issuesToError, safeParseMessage } from './parse.js';
import {
  TESTBED_CONTROL_TYPES,
  testbedControlSchemas,
  type TestbedControlMessage,
  type TestbedControlType,
  type TestbedMessage,
} from './schemas.js';

export type TestbedBody =
  | { success: true; kind: 'workflow'; message: TestbedMessage }
  | { success: true; kind: 'control'; message: TestbedControlMessage }
  | { success: false; error: ValidationError };

const CONTROL_SET: ReadonlySet<string> = new Set(TESTBED_CONTROL_TYPES);
export const isTestbedControlType = (t: unknown): t is TestbedControlType =>
  typeof t === 'string' && CONTROL_SET.has(t);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a body the real testbed sent: a workflow message (the `testbed` profile) or one of its control
 * messages. Never throws; a failure says which message type and field, like `safeParseMessage`.
 */
export function parseTestbedBody(input: unknown): TestbedBody {
  if (isRecord(input) && isTestbedControlType(input.msg_type)) {
    const type = input.msg_type;
    const result = (testbedControlSchemas[type] as z.ZodType).safeParse(input);
    if (result.success) return { success: true, kind: 'control', message: result.data as TestbedControlMessage };
    return {
      success: false,
      error: issuesToError(`${type} message`, result.error.issues, input, { messageType: type }),
    };
  }
  const parsed = safeParseMessage(input, { profile: 'testbed' });
  if (!parsed.success) return parsed;
  return { success: true, kind: 'workflow', message: parsed.message };
}

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
