/** The hand check of the hottest event types agrees with the schemas, and sends anything doubtful to them. */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { parseEvent } from '../../src/messages/index.js';
import { fastParse, projectEvent } from '../../src/projections/projection.js';
import { appendRunFixture } from '../helpers/runFixture.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- mutating arbitrary nested test data
type Mutable = Record<string, any>;

async function fixtureEvents(): Promise<StoredEvent[]> {
  const store = await openEventStore('memory:');
  await appendRunFixture(store);
  const out: StoredEvent[] = [];
  for await (const e of store.readAll()) out.push(e);
  return out;
}

describe('fastParse', () => {
  it('gives every valid slice, slice_result and SliceProcessingStarted exactly what the schemas give', async () => {
    const events = await fixtureEvents();
    const hot = events.filter((e) => ['slice', 'slice_result', 'SliceProcessingStarted'].includes(e.type));
    expect(hot.length).toBeGreaterThan(50);
    for (const e of hot) expect(fastParse(e)).toEqual(parseEvent(e));
    for (const e of events.filter((x) => !hot.includes(x))) expect(fastParse(e)).toBeUndefined();
  });

  it.each([
    ['slice', (d: Mutable) => delete d.content.tf_filename],
    ['slice', (d: Mutable) => (d.content.attempt = 0)],
    ['slice', (d: Mutable) => (d.content.tf_count = 99)],
    ['slice', (d: Mutable) => (d.content.run_id = '1')],
    ['slice', (d: Mutable) => (d.run_id = 'x')],
    ['slice', (d: Mutable) => (d.content = null)],
    ['slice_result', (d: Mutable) => (d.content.state = 'ok')],
    ['slice_result', (d: Mutable) => (d.content.result = { state: false, error: 5 })],
    ['slice_result', (d: Mutable) => delete d.sender],
    ['SliceProcessingStarted', (d: Mutable) => (d.attempt = '1')],
    ['SliceProcessingStarted', (d: Mutable) => delete d.lease_deadline],
  ])('sends a %s that lacks what the projections read to the schemas, which reject it', async (type, mutate) => {
    const events = await fixtureEvents();
    const e = structuredClone(events.find((x) => x.type === type)!);
    mutate(e.data as Mutable);
    expect(fastParse(e)).toBeUndefined();
    const projected = projectEvent(e);
    expect(projected.parsed).toBeUndefined();
    expect(projected.invalid).toMatch(/invalid/);
  });
});
