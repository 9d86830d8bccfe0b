/**
 * The shortcuts the workflow projection's fold takes must give what the plain code gave: a slice's metadata text
 * is `JSON.stringify` of the object, and a composed projection gives each part exactly the event types it reads.
 */
import { describe, expect, it } from 'vitest';
import { composeProjection, type ProjectedEvent, type Write } from '../../src/projections/projection.js';
import { notLater } from '../../src/projections/otherProjections.js';
import { sliceMetadata } from '../../src/projections/workflow/slices.js';

describe('a slice row’s metadata', () => {
  it('is the text JSON.stringify makes of { req_id, slice_processing_time }, for any values', () => {
    const ids: unknown[] = [
      '89ef7cfb-2b45-50e1-83fc-31f96b5e3b2c',
      '',
      'a"b\\c\n\u2028é',
      undefined,
      null,
      7,
      { x: 1 },
    ];
    const times: unknown[] = [30, 0, -0, 1.5, 1e21, -2, Number.NaN, Number.POSITIVE_INFINITY, undefined, null, '30'];
    for (const reqId of ids) {
      for (const t of times) {
        expect(sliceMetadata(reqId, t)).toBe(JSON.stringify({ req_id: reqId, slice_processing_time: t }));
      }
    }
  });
});

describe('a composed projection', () => {
  const event = (parsed: ProjectedEvent['parsed'], invalid?: string): ProjectedEvent => ({
    position: 1n,
    id: 'id',
    type: parsed?.type ?? 'slice',
    stream: 's',
    data: {},
    metadata: {},
    recordedAt: new Date(0),
    parsed,
    invalid,
    time: '1970-01-01T00:00:00.000Z',
    ownTime: undefined,
  });
  const message = (msgType: string): ProjectedEvent['parsed'] =>
    ({ kind: 'message', type: msgType, message: { msg_type: msgType } }) as unknown as ProjectedEvent['parsed'];
  const domain = (type: string): ProjectedEvent['parsed'] =>
    ({ kind: 'domain', type, data: {} }) as unknown as ProjectedEvent['parsed'];

  it('gives each part only the types it lists, in the parts’ order, and invalid events to the parts that ask', () => {
    const seen: string[] = [];
    const part =
      (name: string) =>
      (e: ProjectedEvent): readonly Write[] => {
        const p = e.parsed;
        seen.push(`${name}:${p === undefined ? 'invalid' : p.kind === 'message' ? p.message.msg_type : p.type}`);
        return [{ sql: name, params: [] }];
      };
    const projection = composeProjection<Record<string, never>>('workflow', {}, [
      { evolve: part('a'), messages: ['slice', 'stf_gen'], invalid: true },
      { evolve: part('b'), messages: ['slice'], domainEvents: ['SliceProcessingStarted'] },
      { evolve: part('c'), domainEvents: ['SliceProcessingStarted', 'RunFinished'] },
    ]);
    const writes = (e: ProjectedEvent) => projection.evolve(e, {}).map((w) => w.sql);
    // twice each: the second time the parts come from the per-type cache
    for (let i = 0; i < 2; i++) {
      seen.length = 0;
      expect(writes(event(message('slice')))).toEqual(['a', 'b']);
      expect(writes(event(message('stf_gen')))).toEqual(['a']);
      expect(writes(event(message('slice_result')))).toEqual([]);
      expect(writes(event(domain('SliceProcessingStarted')))).toEqual(['b', 'c']);
      expect(writes(event(domain('RunFinished')))).toEqual(['c']);
      expect(writes(event(undefined, 'bad'))).toEqual(['a']);
      expect(writes(event(undefined))).toEqual([]);
      expect(seen).toEqual([
        'a:slice',
        'b:slice',
        'a:stf_gen',
        'b:SliceProcessingStarted',
        'c:SliceProcessingStarted',
        'c:RunFinished',
        'a:invalid',
      ]);
    }
  });
});

describe('the log clock’s shortcut', () => {
  it('says "not later" only of times that parse to no later instant than the clock (or not at all)', () => {
    const latest = '2026-02-28T11:00:00.000Z';
    const times = [
      '2026-02-28T10:59:59.999Z',
      '2026-02-28T11:00:00.000Z',
      '2026-02-28T11:00:00.001Z',
      '2026-02-28T10:75:00.000Z',
      '2026-02-28T10:00:75.000Z',
      '2026-02-28T24:00:00.000Z',
      '2026-02-28T1a:00:00.000Z',
      '2026-02-28T10-00-00.000Z',
      '2026-02-27T23:00:00.000Z',
      '2026-02-30T01:00:00.000Z',
      '2026-02-28T10:00:00Z',
      '2026-02-28T10:00:00.000+01:00',
      undefined,
    ];
    let shortcuts = 0;
    for (const t of times) {
      if (!notLater(t, latest)) continue;
      shortcuts++;
      const ms = Date.parse(t!);
      expect(Number.isNaN(ms) || ms <= Date.parse(latest), t).toBe(true);
    }
    // the usual case takes it: an earlier or equal time of the same day
    expect(notLater('2026-02-28T10:59:59.999Z', latest)).toBe(true);
    expect(notLater('2026-02-28T11:00:00.001Z', latest)).toBe(false);
    expect(notLater('2026-02-30T01:00:00.000Z', '2026-03-01T11:00:00.000Z')).toBe(false);
    expect(shortcuts).toBeGreaterThanOrEqual(2);
  });
});
