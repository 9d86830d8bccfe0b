/** Checks every adapter applies before anything is written, so bad input never reaches storage. */
import { randomUUID } from 'node:crypto';
import { ValidationError } from '../errors.js';
import type { EventFilter, ExpectedRevision, NewEvent, ReadFrom, StreamAppend } from './eventStore.js';

export const MAX_EVENT_BYTES = 1024 * 1024;
const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$/;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9._:-]{0,99}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertStreamName(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) {
    throw new ValidationError(
      `invalid stream name ${JSON.stringify(stream)}: use 1-200 characters from A-Z a-z 0-9 . _ : @ + = -, starting with a letter or digit`,
      { field: 'stream' },
    );
  }
  if (stream.startsWith('$')) throw new ValidationError(`stream name '${stream}' is reserved`, { field: 'stream' });
}

export function assertExpectedRevision(e: unknown): asserts e is ExpectedRevision {
  if (e === 'any' || e === 'no_stream' || e === 'stream_exists') return;
  if (typeof e === 'bigint' && e >= 0n) return;
  throw new ValidationError(
    `invalid expectedRevision ${typeof e === 'bigint' ? e.toString() : JSON.stringify(e)}: use 'any', 'no_stream', 'stream_exists' or a revision (bigint >= 0)`,
    { field: 'expectedRevision' },
  );
}

export function assertReadFrom(from: unknown, what: string): asserts from is ReadFrom | undefined {
  if (from === undefined || from === 'start' || from === 'end') return;
  if (typeof from === 'bigint' && from >= 0n) return;
  throw new ValidationError(
    `invalid ${what} ${typeof from === 'bigint' ? from.toString() : JSON.stringify(from)}: use 'start', 'end' or a bigint >= 0`,
    { field: 'from' },
  );
}

export function maxCountOf(maxCount: number | bigint | undefined): number {
  if (maxCount === undefined) return Number.POSITIVE_INFINITY;
  const n = Number(maxCount);
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError(`invalid maxCount ${String(maxCount)}`, { field: 'maxCount' });
  return n;
}

/** A new event, checked and serialized once. */
export interface PreparedEvent {
  id: string;
  type: string;
  data: string;
  metadata: string;
}

/** Why `value` would not survive a JSON round trip, or undefined when it would. Cheaper than a replacer. */
function notJson(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${value} is not JSON`;
    case 'bigint':
      return 'a bigint is not JSON';
    case 'object': {
      if (value === null) return undefined;
      if (depth > 100) return 'nested too deeply (circular?)';
      if (Array.isArray(value)) {
        for (const v of value) {
          const why = notJson(v, depth + 1);
          if (why) return why;
        }
        return undefined;
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined; // Date and friends
      for (const k in value) {
        const why = notJson((value as Record<string, unknown>)[k], depth + 1);
        if (why) return `${k}: ${why}`;
      }
      return undefined;
    }
    default:
      return `a ${typeof value} is not JSON`;
  }
}

function serialize(value: unknown, what: string, type: string): string {
  const why = notJson(value, 0);
  if (why) throw new ValidationError(`event '${type}': ${what} is not JSON-serializable (${why})`, { field: what });
  return JSON.stringify(value);
}

/** A plain boolean (Array.isArray's type guard would widen a typed array to any[]). */
const isList = (v: unknown): boolean => Array.isArray(v);

export function prepareEvents(events: readonly NewEvent[]): PreparedEvent[] {
  if (!isList(events) || events.length === 0) {
    throw new ValidationError('append needs at least one event', { field: 'events' });
  }
  const seen = new Set<string>();
  return events.map((e) => {
    if (typeof e !== 'object' || e === null)
      throw new ValidationError('an event must be an object', { field: 'events' });
    if (typeof e.type !== 'string' || !EVENT_TYPE.test(e.type)) {
      throw new ValidationError(`invalid event type ${JSON.stringify(e.type)}`, { field: 'type' });
    }
    let lower: string;
    if (e.id === undefined) lower = randomUUID();
    else {
      if (typeof e.id !== 'string' || !UUID.test(e.id)) {
        throw new ValidationError(`event '${e.type}': id ${JSON.stringify(e.id)} is not a UUID`, { field: 'id' });
      }
      lower = e.id.toLowerCase();
    }
    if (seen.has(lower)) throw new ValidationError(`event id ${lower} appears twice in one append`, { field: 'id' });
    seen.add(lower);
    const data = serialize(e.data, 'data', e.type);
    const metadata = serialize(e.metadata ?? {}, 'metadata', e.type);
    // UTF-16 length × 3 bounds the UTF-8 size: count bytes only when it might matter.
    const bound = (data.length + metadata.length) * 3;
    const size = bound <= MAX_EVENT_BYTES ? 0 : Buffer.byteLength(data) + Buffer.byteLength(metadata);
    if (size > MAX_EVENT_BYTES) {
      throw new ValidationError(`event '${e.type}' is ${size} bytes; the limit is ${MAX_EVENT_BYTES} bytes (1 MiB)`, {
        field: 'data',
      });
    }
    return { id: lower, type: e.type, data, metadata };
  });
}

export function matchesFilter(filter: EventFilter | undefined, stream: string, type: string): boolean {
  if (!filter) return true;
  const { streamPrefix, eventTypePrefix } = filter;
  if (streamPrefix && streamPrefix.length > 0 && !streamPrefix.some((p) => stream.startsWith(p))) return false;
  if (eventTypePrefix && eventTypePrefix.length > 0 && !eventTypePrefix.some((p) => type.startsWith(p))) return false;
  return true;
}

export function assertGroupName(group: unknown): asserts group is string {
  if (typeof group !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(group)) {
    throw new ValidationError(`invalid group name ${JSON.stringify(group)}`, { field: 'group' });
  }
}

/** One append, checked and serialized: what every adapter writes. */
export interface PreparedAppend {
  stream: string;
  events: PreparedEvent[];
  expected: ExpectedRevision;
}

/**
 * The preamble of every append and commit: the stream's name, the expected revision (default `any`) and the
 * events, all checked before anything is written. `assertName` is the adapter's own rule for stream names where
 * it has one (EventStoreDB takes its system streams).
 */
export function prepareAppend(
  stream: string,
  events: readonly NewEvent[],
  expectedRevision: ExpectedRevision | undefined,
  assertName: (stream: unknown) => asserts stream is string = assertStreamName,
): PreparedAppend {
  assertName(stream);
  const expected = expectedRevision ?? 'any';
  assertExpectedRevision(expected);
  return { stream, events: prepareEvents(events), expected };
}

/** A commit's appends, all checked before any is written. */
export function prepareAppends(
  appends: readonly StreamAppend[],
  assertName: (stream: unknown) => asserts stream is string = assertStreamName,
): PreparedAppend[] {
  if (!isList(appends)) throw new ValidationError('commit needs a list of appends', { field: 'appends' });
  return appends.map((a) => prepareAppend(a.stream, a.events, a.expectedRevision, assertName));
}
