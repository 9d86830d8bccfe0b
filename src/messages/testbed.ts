/**
 * The real testbed's bodies as they arrive from its broker: which message a frame is, and the one rule for the
 * zone of its naive timestamps. docs/broker.md explains both with the captured traffic.
 */
import type { z } from 'zod';
import type { ValidationError } from '../errors.js';
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
