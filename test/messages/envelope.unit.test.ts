import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/errors.js';
import {
  deriveId,
  DESTINATIONS,
  domainEvent,
  DOMAIN_EVENT_TYPES,
  EVENT_TYPES,
  EXECUTION_IDS_STREAM,
  MESSAGE_KINDS,
  messageEvent,
  parseDomainEvent,
  parseStreamName,
  readMetadata,
  RUN_NUMBERS_STREAM,
  SCHEMA_VERSION,
  STREAM_NAME_PATTERN,
  streamForMessage,
  hasManyWriters,
  streams,
  type Message,
  type MessageKind,
} from '../../src/messages/index.js';
import { swfExamples } from './examples.js';

const message = (kind: MessageKind): Message => structuredClone(swfExamples[kind]) as Message;
const id = (n: number): string => deriveId('test', n);

describe('message → stored event', () => {
  it('uses the msg_type as the type, the body as the data and the message id as the id', () => {
    const m = message('stf_gen');
    const e = messageEvent(m, { id: id(1) });
    expect(e).toMatchObject({ id: id(1), type: 'stf_gen', data: m });
  });

  it('starts a chain with correlation and causation = its own id', () => {
    const e = messageEvent(message('run_imminent'), { id: id(1) });
    expect(e.metadata).toEqual({
      schemaVersion: SCHEMA_VERSION,
      correlationId: id(1),
      causationId: id(1),
      destination: '/topic/epictopic',
      namespace: 'torre1',
      executionId: 'fast_processing-swf-0001',
      runNumber: 100010,
    });
  });

  it("continues a chain: the cause's correlation id, the cause as causation", () => {
    const cause = messageEvent(message('stf_gen'), {
      id: id(1),
      cause: { id: id(0), metadata: { correlationId: id(9) } },
    });
    expect(cause.metadata).toMatchObject({ correlationId: id(9), causationId: id(0) });
    const effect = messageEvent(message('stf_ready'), { id: id(2), cause });
    expect(effect.metadata).toMatchObject({ correlationId: id(9), causationId: id(1) });
    const orphan = messageEvent(message('stf_ready'), { id: id(3), cause: { id: id(1) } });
    expect(orphan.metadata).toMatchObject({ correlationId: id(1), causationId: id(1) });
  });

  it('puts each message on its testbed destination', () => {
    const expected: Record<MessageKind, string | undefined> = {
      run_imminent: DESTINATIONS.epictopic,
      start_run: DESTINATIONS.epictopic,
      stf_gen: DESTINATIONS.epictopic,
      pause_run: DESTINATIONS.epictopic,
      resume_run: DESTINATIONS.epictopic,
      end_run: DESTINATIONS.epictopic,
      stf_ready: DESTINATIONS.epictopic,
      tf_file_registered: DESTINATIONS.epictopic,
      slice: '/queue/panda.transformer.slices',
      slice_result: '/queue/panda.results.fastprocessing',
      run_imminent_worker: '/topic/panda.workers',
      worker_end_run: '/topic/panda.workers',
      agent_heartbeat: undefined,
      agent_log: undefined,
    };
    for (const kind of MESSAGE_KINDS) {
      expect(messageEvent(message(kind), { id: id(1) }).metadata.destination, kind).toBe(expected[kind]);
    }
  });

  it('refuses to envelope a malformed message or a non-UUID id', () => {
    expect(() => messageEvent({ ...message('stf_gen'), sequence: 0 }, { id: id(1) })).toThrow(ValidationError);
    expect(() => messageEvent(message('stf_gen'), { id: 'not-a-uuid' })).toThrow(/not a UUID/);
  });

  it('reads metadata back and rejects metadata without a schema version', () => {
    const e = messageEvent(message('slice'), { id: id(1) });
    expect(readMetadata(JSON.parse(JSON.stringify(e.metadata)))).toEqual(e.metadata);
    expect(() => readMetadata({ correlationId: 'a', causationId: 'b', namespace: 'n' })).toThrow(/schemaVersion/);
  });
});

describe('domain events', () => {
  const valid = {
    BrokerMessageRejected: {
      reason: 'body is not JSON: Unexpected token',
      destination: '/topic/epictopic',
      message_id: 'ID:vm-46509-1796656791394-3:9:-1:1:1',
      headers: { 'message-id': 'ID:vm-46509-1796656791394-3:9:-1:1:1' },
      raw_body: 'not json',
      received_at: '2026-01-01T00:00:00.000Z',
    },
    WorkflowExecutionStarted: {
      execution_id: 'fast_processing-swf-0001',
      workflow_name: 'fast_processing',
      namespace: 'torre1',
      executed_by: 'swf',
      parameter_values: { testbed: { namespace: 'torre1' } },
      machine_hash: 'a'.repeat(64),
      machine_definitions: { run: {} },
      start_time: '2026-01-01T00:00:00.000Z',
    },
    WorkflowExecutionFinished: {
      execution_id: 'fast_processing-swf-0001',
      status: 'completed',
      end_time: '2026-01-01T00:01:00.000Z',
    },
    RunNumberAllocated: { run_number: 100010, execution_id: 'fast_processing-swf-0001' },
    SliceProcessingStarted: {
      run_id: '100010',
      execution_id: 'fast_processing-swf-0001',
      namespace: 'torre1',
      slice_id: 0,
      tf_filename: 'swf.100010.000001_tf_001_slice_000.tf',
      fastmon_file: 'swf.100010.000001_tf_001.tf',
      attempt: 1,
      worker: 'panda-worker-01',
      started_at: '2026-01-01T00:00:00.000Z',
      lease_deadline: '2026-01-01T00:01:30.000Z',
    },
    SliceLeaseExpired: {
      run_id: '100010',
      execution_id: 'fast_processing-swf-0001',
      namespace: 'torre1',
      tf_filename: 'swf.100010.000001_tf_001_slice_000.tf',
      attempt: 1,
      worker: 'panda-worker-01',
      expired_at: '2026-01-01T00:01:30.000Z',
    },
    MessageRejected: {
      agent: 'fast_processing-agent-swf-1',
      reason: 'invalid stf_gen message: sequence is missing',
      original_event_id: id(5),
      original_type: 'stf_gen',
      original_stream: 'run-100010',
      original_position: 42,
    },
    RunTransitionRefused: {
      agent: 'fast_processing-agent-swf-1',
      run_id: '100010',
      msg_type: 'stf_gen',
      state: 'standby',
      reason: 'stf_gen during standby: data taking is paused',
      original_event_id: id(6),
    },
    DatasetOpened: { run_id: '100010', execution_id: 'e-swf-0001', namespace: 'torre1', dataset: 'swf.100010.run' },
    DatasetClosed: {
      run_id: '100010',
      execution_id: 'e-swf-0001',
      namespace: 'torre1',
      dataset: 'swf.100010.run',
      total_stf_files: 10,
    },
    StopRequested: { execution_id: 'e-swf-0001', requested_at: '2026-01-01T00:00:30.000Z' },
    ExecutionIdAllocated: { execution_id: 'fast_processing-swf-0001', sequence: 1 },
    RunFinished: {
      run_id: '100010',
      execution_id: 'fast_processing-swf-0001',
      namespace: 'torre1',
      finished_at: '2026-01-01T00:02:00.000Z',
      stf_files: 10,
      stf_samples_received: 70,
      slices_created: 1050,
      slices_completed: 1050,
      slices_failed: 0,
      slices_retried: 0,
    },
  } as const;

  it('has a schema and a valid example for every domain event type', () => {
    expect(Object.keys(valid).sort()).toEqual([...DOMAIN_EVENT_TYPES].sort());
    for (const [type, data] of Object.entries(valid)) {
      expect(parseDomainEvent(type as keyof typeof valid, data)).toEqual(data);
    }
  });

  it.each(Object.entries(valid).flatMap(([type, data]) => Object.keys(data).map((field) => ({ type, field, data }))))(
    '$type without $field fails naming it (unless optional)',
    ({ type, field, data }) => {
      const copy: Record<string, unknown> = { ...data };
      delete copy[field];
      const optional = (type === 'WorkflowExecutionFinished' && field === 'reason') || field === 'total_stf_files';
      if (optional) expect(() => parseDomainEvent(type as keyof typeof valid, copy)).not.toThrow();
      else
        expect(() => parseDomainEvent(type as keyof typeof valid, copy)).toThrow(
          new RegExp(`${type} event: ${field} is missing`),
        );
    },
  );

  it('envelopes a domain event with the namespace, execution and run in its metadata', () => {
    const e = domainEvent('SliceLeaseExpired', valid.SliceLeaseExpired, {
      id: id(7),
      namespace: 'torre1',
      cause: { id: id(6) },
    });
    expect(e).toMatchObject({ id: id(7), type: 'SliceLeaseExpired', data: valid.SliceLeaseExpired });
    expect(e.metadata).toEqual({
      schemaVersion: 1,
      correlationId: id(6),
      causationId: id(6),
      namespace: 'torre1',
      executionId: 'fast_processing-swf-0001',
      runNumber: 100010,
    });
    const alloc = domainEvent('RunNumberAllocated', valid.RunNumberAllocated, { id: id(8), namespace: 'torre1' });
    expect(alloc.metadata).toMatchObject({ runNumber: 100010, executionId: 'fast_processing-swf-0001' });
    expect(() => domainEvent('StopRequested', { execution_id: '' } as never, { id: id(9), namespace: 'n' })).toThrow(
      ValidationError,
    );
  });

  it('lists every stored event type by its own name', () => {
    expect(EVENT_TYPES.stf_gen).toBe('stf_gen');
    expect(EVENT_TYPES.SliceLeaseExpired).toBe('SliceLeaseExpired');
    expect(Object.keys(EVENT_TYPES)).toHaveLength(13 + DOMAIN_EVENT_TYPES.length);
    for (const t of Object.values(EVENT_TYPES)) expect(t).toMatch(/^[A-Za-z][A-Za-z0-9._:-]{0,99}$/);
  });
});

describe('streams', () => {
  it('names the streams', () => {
    expect(streams.execution('fast_processing-swf-0001')).toBe('execution-fast_processing-swf-0001');
    expect(streams.run('100010')).toBe('run-100010');
    expect(streams.run(100010)).toBe('run-100010');
    expect(streams.run(100010n)).toBe('run-100010');
    expect(streams.data(100010)).toBe('data-100010');
    expect(streams.fastmon(100010)).toBe('fastmon-100010');
    expect(streams.fastproc(100010)).toBe('fastproc-100010');
    expect(streams.slices(100010)).toBe('slices-100010');
    expect(streams.results(100010)).toBe('results-100010');
    expect(hasManyWriters('results-100010')).toBe(true);
    expect(hasManyWriters('slices-100010')).toBe(false);
    expect(streams.agent('data-agent-swf-1')).toBe('agent-data-agent-swf-1');
    expect([RUN_NUMBERS_STREAM, EXECUTION_IDS_STREAM]).toEqual(['swf-run-numbers', 'swf-execution-ids']);
  });

  it('puts each message on its stream', () => {
    const expected: Record<MessageKind, string> = {
      run_imminent: 'run-100010',
      start_run: 'run-100010',
      stf_gen: 'run-100010',
      pause_run: 'run-100010',
      resume_run: 'run-100010',
      end_run: 'run-100010',
      stf_ready: 'data-100010',
      tf_file_registered: 'fastmon-100010',
      slice: 'slices-100010',
      slice_result: 'results-100010',
      run_imminent_worker: 'fastproc-100010',
      worker_end_run: 'fastproc-100010',
      agent_heartbeat: 'agent-data-agent-swf-1',
      agent_log: 'agent-data-agent-swf-1',
    };
    for (const kind of MESSAGE_KINDS) expect(streamForMessage(message(kind)), kind).toBe(expected[kind]);
  });

  it('refuses names the store would refuse', () => {
    expect(() => streams.agent('has space')).toThrow(/invalid stream name/);
    expect(() => streams.results('r1')).toThrow(/invalid run number/);
    expect(() => streams.run('abc')).toThrow(/invalid run number/);
    expect(() => streams.agent('x'.repeat(200))).toThrow(/invalid stream name/);
    expect(STREAM_NAME_PATTERN.test(streams.execution('a'.repeat(180)))).toBe(true);
  });

  it('parses a stream name back into its kind and key', () => {
    expect(parseStreamName('slices-100010')).toEqual({ kind: 'slices', key: '100010' });
    expect(parseStreamName('results-100010')).toEqual({ kind: 'results', key: '100010' });
    expect(parseStreamName('agent-panda-worker-01')).toEqual({ kind: 'agent', key: 'panda-worker-01' });
    expect(parseStreamName('swf-run-numbers')).toBeUndefined();
  });
});

describe('deriveId', () => {
  it('derives the same UUID from the same inputs, and a different one from different inputs', () => {
    const a = deriveId('6f1c2d3e-4b5a-5c6d-8e7f-0a1b2c3d4e5f', 'slice', 'swf.100010.000001_tf_001_slice_000.tf', 2);
    expect(a).toBe(
      deriveId('6f1c2d3e-4b5a-5c6d-8e7f-0a1b2c3d4e5f', 'slice', 'swf.100010.000001_tf_001_slice_000.tf', 2),
    );
    expect(a).not.toBe(
      deriveId('6f1c2d3e-4b5a-5c6d-8e7f-0a1b2c3d4e5f', 'slice', 'swf.100010.000001_tf_001_slice_000.tf', 3),
    );
    expect(deriveId('a', 'b:c')).not.toBe(deriveId('a:b', 'c'));
    expect(deriveId('a', 1)).not.toBe(deriveId('a', '1'));
  });

  it('produces RFC 4122 version-5 UUIDs', () => {
    for (let i = 0; i < 50; i++) {
      const u = deriveId('seed', i);
      expect(z.uuid().safeParse(u).success).toBe(true);
      expect(u[14]).toBe('5');
      expect('89ab').toContain(u[19]);
    }
  });

  it('seeded by a stored event, leads with its revision (version 8) so ids written together sort together', () => {
    const input = { id: '6f1c2d3e-4b5a-5c6d-8e7f-0a1b2c3d4e5f', revision: 41n };
    const u = deriveId(input, 'started', 'panda-worker-01', 0);
    expect(z.uuid().safeParse(u).success).toBe(true);
    expect(u.slice(0, 13)).toBe('00000000-0029');
    expect(u[14]).toBe('8');
    expect('89ab').toContain(u[19]);
    // A pure function of the input event: the same again, and the hash part is the string seed's.
    expect(deriveId({ ...input }, 'started', 'panda-worker-01', 0)).toBe(u);
    expect(u.slice(15)).toBe(deriveId(input.id, 'started', 'panda-worker-01', 0).slice(15));
    expect(deriveId(input, 'started', 'panda-worker-02', 0)).not.toBe(u);
    // Consecutive inputs give ids in the same order.
    const ids = [5n, 6n, 7n, 300n, 70000n].map((r) => deriveId({ id: `x${r}`, revision: r }, 'slice'));
    expect([...ids].sort()).toEqual(ids);
    // Without a revision (an event not yet stored) it is the version-5 id of its id.
    expect(deriveId({ id: input.id }, 'x')).toBe(deriveId(input.id, 'x'));
  });
});
