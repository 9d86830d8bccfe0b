import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ValidationError } from '../../src/errors.js';
import {
  MESSAGE_KINDS,
  messageKind,
  messageSchemas,
  parseEvent,
  parseMessage,
  safeParseMessage,
  UnknownMessageTypeError,
  type MessageKind,
} from '../../src/messages/index.js';
import { swfExamples, testbedExamples } from './examples.js';

const clone = <T>(v: T): T => structuredClone(v);

/** The fields a schema requires: top-level, and inside `content` for the nested messages. */
function requiredFields(kind: MessageKind): string[][] {
  const schema = messageSchemas[kind] as unknown as z.ZodObject;
  const required = (shape: Record<string, z.ZodType>, prefix: string[]): string[][] =>
    Object.entries(shape).flatMap(([key, field]) => {
      if (field.safeParse(undefined).success) return [];
      const inner = (field as unknown as { shape?: Record<string, z.ZodType> }).shape;
      return [[...prefix, key], ...(inner ? required(inner, [...prefix, key]) : [])];
    });
  return required(schema.shape as Record<string, z.ZodType>, []).filter((p) => p.join('.') !== 'msg_type');
}

function withField(body: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const out = clone(body);
  let target = out;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return out;
}

/** A value of the wrong type for whatever the field expects. */
const wrongValue = (body: Record<string, unknown>, path: string[]): unknown => {
  let v: unknown = body;
  for (const key of path) v = (v as Record<string, unknown>)[key];
  return typeof v === 'object' && v !== null ? 'not an object' : { wrong: true };
};

function expectError(input: unknown, field: string, messageType: string): ValidationError {
  const result = safeParseMessage(input);
  expect(result.success).toBe(false);
  if (result.success) throw new Error('unreachable');
  expect(result.error).toBeInstanceOf(ValidationError);
  expect(result.error.details).toMatchObject({ field, messageType });
  expect(result.error.message).toContain(field);
  return result.error;
}

describe('message schemas (swf profile)', () => {
  it.each(MESSAGE_KINDS)('accepts a valid %s', (kind) => {
    const body = swfExamples[kind];
    expect(parseMessage(body)).toEqual(body);
    expect(messageKind(body as { msg_type: string })).toBe(kind);
  });

  const cases = MESSAGE_KINDS.flatMap((kind) =>
    requiredFields(kind).map((path) => ({ kind, field: path.join('.'), path })),
  );

  it('requires execution_id, run_id, namespace, sender and created_at on every workflow message', () => {
    for (const kind of MESSAGE_KINDS) {
      const fields = requiredFields(kind).map((p) => p.join('.'));
      for (const f of ['namespace', 'sender', 'created_at']) expect(fields, kind).toContain(f);
      // Agent heartbeats and logs may belong to no execution or run (null, or absent for logs).
      if (kind === 'agent_heartbeat' || kind === 'agent_log') continue;
      for (const f of ['execution_id', 'run_id']) expect(fields, kind).toContain(f);
    }
  });

  // A body without `content` is the DAQ's end_run, so the workers' end_run cannot lack it.
  const missing = cases.filter((c) => !(c.kind === 'worker_end_run' && c.field === 'content'));

  it.each(missing)('$kind without $field fails, naming it', ({ kind, field, path }) => {
    const body = withField(swfExamples[kind], path, undefined);
    const error = expectError(body, field, body.msg_type as string);
    expect(error.message).toMatch(/is missing/);
  });

  it.each(cases)('$kind with a mistyped $field fails, naming it', ({ kind, field, path }) => {
    const body = swfExamples[kind];
    expectError(withField(body, path, wrongValue(body, path)), field, body.msg_type as string);
  });

  it('keeps fields it does not know', () => {
    const body = { ...swfExamples.stf_gen, extra: { nested: 1 } };
    expect(parseMessage(body)).toMatchObject({ extra: { nested: 1 } });
  });

  it('keeps run_id a string', () => {
    expectError({ ...swfExamples.start_run, run_id: 100010 }, 'run_id', 'start_run');
    expectError({ ...swfExamples.start_run, run_id: 'run-1' }, 'run_id', 'start_run');
  });

  it('wants UTC timestamps ending in Z', () => {
    const e = expectError(
      { ...swfExamples.start_run, created_at: '2026-01-15T11:02:14.201733' },
      'created_at',
      'start_run',
    );
    expect(e.message).toMatch(/ISO-8601 UTC/);
  });

  it('checks the ranges: sequence from 1, tf_count = last - first + 1, slice end = start + tf_count - 1', () => {
    expectError({ ...swfExamples.stf_gen, sequence: 0 }, 'sequence', 'stf_gen');
    expectError({ ...swfExamples.tf_file_registered, tf_count: 20 }, 'tf_count', 'tf_file_registered');
    expectError({ ...swfExamples.tf_file_registered, tf_last: 1 }, 'tf_last', 'tf_file_registered');
    expectError(withField(swfExamples.slice, ['content', 'end'], 40), 'content.tf_count', 'slice');
    expectError(
      withField(swfExamples.slice_result, ['content', 'state'], 'processed'),
      'content.state',
      'slice_result',
    );
  });

  it('wants the run and execution in content to match the top level', () => {
    expectError(withField(swfExamples.slice, ['content', 'run_id'], '100011'), 'content.run_id', 'slice');
    expectError(
      withField(swfExamples.worker_end_run, ['content', 'execution_id'], 'x'),
      'content.execution_id',
      'end_run',
    );
  });

  it('only allows E0-E1 states and substates as the stamp', () => {
    expectError({ ...swfExamples.start_run, state: 'running' }, 'state', 'start_run');
    expectError({ ...swfExamples.pause_run, substate: 'paused' }, 'substate', 'pause_run');
  });
});

describe('message schemas (testbed profile)', () => {
  it.each(Object.keys(testbedExamples) as MessageKind[])("accepts the testbed's %s", (kind) => {
    const body = testbedExamples[kind]!;
    expect(parseMessage(body, { profile: 'testbed' })).toEqual(body);
  });

  it('still checks what the testbed does send', () => {
    const bad = { ...testbedExamples.stf_gen, sequence: '1' };
    const result = safeParseMessage(bad, { profile: 'testbed' });
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.details).toMatchObject({ field: 'sequence', messageType: 'stf_gen' });
  });

  it('accepts our own messages too', () => {
    for (const kind of MESSAGE_KINDS)
      expect(safeParseMessage(swfExamples[kind], { profile: 'testbed' }).success).toBe(true);
  });

  it("rejects the testbed's bodies in the swf profile, naming the field we add", () => {
    expectError(testbedExamples.stf_gen, 'created_at', 'stf_gen');
    expectError(testbedExamples.stf_ready, 'execution_id', 'stf_ready');
  });
});

describe('parseMessage errors', () => {
  it('gives an unknown msg_type its own error', () => {
    const result = safeParseMessage({ ...swfExamples.start_run, msg_type: 'start_runn' });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error).toBeInstanceOf(UnknownMessageTypeError);
    expect(result.error).toBeInstanceOf(ValidationError);
    expect(result.error.message).toMatch(/unknown msg_type "start_runn"/);
    expect(result.error.details).toMatchObject({ field: 'msg_type', messageType: 'start_runn' });
    expect(() => parseMessage({ msg_type: 'nope' })).toThrow(UnknownMessageTypeError);
  });

  it('says when the body is not an object or has no msg_type', () => {
    expect(() => parseMessage('text')).toThrow(/must be a JSON object/);
    expect(() => parseMessage([])).toThrow(/got array/);
    expect(() => parseMessage({})).toThrow(/msg_type is missing/);
    expect(() => parseMessage({ msg_type: 3 })).toThrow(/msg_type must be a string/);
  });

  it('tells the two end_run messages apart by shape', () => {
    expect(messageKind(swfExamples.end_run as { msg_type: string })).toBe('end_run');
    expect(messageKind({ msg_type: 'end_run', content: 'x' })).toBe('worker_end_run');
    expectError(withField(swfExamples.worker_end_run, ['content'], undefined), 'timestamp', 'end_run');
    expect(messageKind(swfExamples.worker_end_run as { msg_type: string; content: unknown })).toBe('worker_end_run');
    const e = expectError(
      withField(swfExamples.worker_end_run, ['content', 'total_stf_files'], -1),
      'content.total_stf_files',
      'end_run',
    );
    expect(e.message).toMatch(/end_run \(worker\)/);
  });
});

describe('parseEvent', () => {
  it('reads a stored message whose type is its msg_type', () => {
    const parsed = parseEvent({ type: 'stf_gen', data: swfExamples.stf_gen });
    expect(parsed).toMatchObject({ kind: 'message', type: 'stf_gen', message: swfExamples.stf_gen });
  });

  it('refuses a stored message whose type differs from its msg_type', () => {
    expect(() => parseEvent({ type: 'start_run', data: swfExamples.stf_gen })).toThrow(/does not match/);
  });

  it('reads a domain event and refuses an unknown type', () => {
    const data = { execution_id: 'x-swf-0001', requested_at: '2026-01-01T00:00:00.000Z' };
    expect(parseEvent({ type: 'StopRequested', data })).toEqual({ kind: 'domain', type: 'StopRequested', data });
    expect(() => parseEvent({ type: 'SomethingElse', data })).toThrow(UnknownMessageTypeError);
  });
});
