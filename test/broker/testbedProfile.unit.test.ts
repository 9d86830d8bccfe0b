import { describe, expect, it } from 'vitest';
import { parseTestbedBody, safeParseMessage, testbedTimeToIso } from '../../src/messages/index.js';
import { readCorpus } from './corpus.js';

const corpus = readCorpus();

describe('the testbed profile over the captured real traffic', () => {
  it('has the whole corpus to check (826 frames)', () => {
    expect(corpus).toHaveLength(826);
  });

  it.each(corpus.map((f) => [f.seq, (f.body as { msg_type?: string }).msg_type ?? '?', f] as const))(
    'accepts frame %i (%s)',
    (_seq, _type, frame) => {
      const result = parseTestbedBody(frame.body);
      if (!result.success) throw result.error;
      expect(result.message.msg_type).toBe((frame.body as { msg_type: string }).msg_type);
    },
  );

  it('knows every message type the real testbed sent, and which are workflow messages', () => {
    const kinds = new Map<string, string>();
    for (const f of corpus) {
      const r = parseTestbedBody(f.body);
      if (r.success) kinds.set(r.message.msg_type, r.kind);
    }
    expect(Object.fromEntries(kinds)).toEqual({
      run_workflow: 'control',
      run_imminent: 'workflow',
      run_imminent_worker: 'workflow',
      create_workflow_task: 'control',
      start_run: 'workflow',
      stf_gen: 'workflow',
      pause_run: 'workflow',
      stf_ready: 'workflow',
      heartbeat: 'control',
      slice_result: 'workflow',
      tf_file_registered: 'workflow',
      slice: 'workflow',
      resume_run: 'workflow',
      end_run: 'workflow',
      stop_transformer: 'control',
      close_workflow_task: 'control',
    });
  });

  it('accepts the nulls real agents send: slices after end_run, stf_ready checksums, heartbeat-made results', () => {
    const nullSlice = corpus.find(
      (f) =>
        f.headers.msg_type === 'slice' &&
        (f.body as { content: { execution_id: unknown } }).content.execution_id === null,
    );
    expect(nullSlice).toBeDefined();
    expect(parseTestbedBody(nullSlice!.body).success).toBe(true);
    // our own profile still refuses them, naming the field
    const own = safeParseMessage(nullSlice!.body);
    expect(own.success).toBe(false);
    const result = corpus.find((f) => (f.body as { run_id?: unknown; msg_type?: string }).msg_type === 'slice_result');
    expect((result!.body as { run_id: unknown }).run_id).toBeNull();
    expect(parseTestbedBody(result!.body).success).toBe(true);
  });

  it('still checks what the testbed does send', () => {
    const slice = corpus.find((f) => f.headers.msg_type === 'slice')!.body as { content: Record<string, unknown> };
    const bad = { ...slice, content: { ...slice.content, tf_count: 99 } };
    const r = parseTestbedBody(bad);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.message).toMatch(/^invalid slice message: content\.tf_count must equal/);
    const hb = parseTestbedBody({ msg_type: 'heartbeat', namespace: 'torre1', timestamp: 'yesterday' });
    expect(hb.success).toBe(false);
    if (!hb.success) expect(hb.error.message).toMatch(/heartbeat message: internal_id is missing/);
    const stamp = parseTestbedBody({ ...(corpus[1]!.body as object), timestamp: '7 Dec 2026' });
    expect(stamp.success).toBe(false);
    if (!stamp.success) expect(stamp.error.message).toMatch(/timestamp must be an ISO-8601 timestamp/);
  });

  it('reads a naive timestamp as UTC and an aware one in its own zone', () => {
    expect(testbedTimeToIso('2026-12-07T15:21:34.519000')).toBe('2026-12-07T15:21:34.519Z');
    expect(testbedTimeToIso('2026-12-07T15:21:34.704422+00:00')).toBe('2026-12-07T15:21:34.704Z');
    expect(testbedTimeToIso('2026-12-07T17:21:34+02:00')).toBe('2026-12-07T15:21:34.000Z');
    expect(testbedTimeToIso('2026-12-07 15:21')).toBe('2026-12-07T15:21:00.000Z');
    expect(testbedTimeToIso('2026-13-07T15:21:34')).toBeUndefined();
    expect(testbedTimeToIso('tomorrow')).toBeUndefined();
    expect(testbedTimeToIso(1796656903.97)).toBeUndefined();
  });
});
