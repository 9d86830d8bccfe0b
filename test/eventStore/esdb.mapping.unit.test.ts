/**
 * The EventStoreDB adapter's translations, checked without a server: fake resolved events shaped like the
 * client's, and the client's own error classes.
 */
import {
  AccessDeniedError,
  DeadlineExceededError,
  END,
  type JSONRecordedEvent,
  MaxAppendSizeExceededError,
  PersistentSubscriptionDoesNotExistError,
  PersistentSubscriptionExistsError,
  type ResolvedEvent,
  ROUND_ROBIN,
  START,
  StreamDeletedError,
  StreamNotFoundError as ClientStreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  ExpectedVersionConflictError,
  NotFoundError,
  StoreCorruptError,
  StoreUnavailableError,
  StreamNotFoundError,
  ValidationError,
} from '../../src/index.js';
import {
  type ClientRecordedEvent,
  carriesLinkPosition,
  checkpointFrom,
  checkpointStreamOf,
  clientPredicate,
  fromClientAppendResult,
  fromClientExpectedRevision,
  isGroupExistsError,
  isInternalEvent,
  isStreamNotFoundError,
  nackDecision,
  parkedStreamOf,
  planFilter,
  planGroup,
  readAllStart,
  readStreamStart,
  redactConnectionString,
  subscribeAllStart,
  subscribeStreamStart,
  toCheckpointEventData,
  toClientConnectionString,
  toClientDirection,
  toClientExpectedRevision,
  toClientNackAction,
  toClientPosition,
  toEventData,
  toGroupEvent,
  toParkedEvent,
  toStoredEvent,
  translateError,
} from '../../src/eventStore/esdb/mapping.js';
import { matchesFilter, prepareEvents } from '../../src/eventStore/validation.js';

const created = new Date('2025-03-01T12:00:00.000Z');
const ID = '0b6f1a52-8c3e-4a4e-9d0e-2f1d3c4b5a69';

/** A recorded JSON event as the client hands it out (its own type, so a drift in the client shows here). */
function recorded(overrides: Partial<JSONRecordedEvent> = {}): JSONRecordedEvent {
  return {
    streamId: 'run-100010',
    id: ID,
    revision: 3n,
    type: 'stf_gen',
    created,
    isJson: true,
    data: { run_id: '100010', seq: 1 },
    metadata: { correlationId: 'c1' },
    position: { commit: 4242n, prepare: 4242n },
    ...overrides,
  };
}

const resolved = (event?: JSONRecordedEvent, extra: Partial<ResolvedEvent> = {}): ResolvedEvent => ({
  ...(event ? { event } : {}),
  ...extra,
});

/** A link ($>) as the server writes it into a parked stream. */
const link = (metadata: unknown, revision = 0n): ClientRecordedEvent => ({
  streamId: '$persistentsubscription-q::workers-parked',
  id: '9a3c2b1d-0000-4000-8000-000000000001',
  revision,
  type: '$>',
  created: new Date('2025-03-01T12:05:00.000Z'),
  isJson: false,
  data: new TextEncoder().encode('3@q'),
  metadata,
  position: { commit: 9000n, prepare: 9000n },
});

const CONNECTION = 'esdb://localhost:2113?tls=false';
const ctx = { connection: CONNECTION };

describe('connection strings', () => {
  it('passes esdb:// and esdb+discover:// through and rewrites kurrentdb:// and kurrent://', () => {
    expect(toClientConnectionString('esdb://localhost:2113?tls=false')).toBe('esdb://localhost:2113?tls=false');
    expect(toClientConnectionString('esdb+discover://cluster:2113')).toBe('esdb+discover://cluster:2113');
    expect(toClientConnectionString('kurrentdb://admin:changeit@h:2113?tls=false')).toBe(
      'esdb://admin:changeit@h:2113?tls=false',
    );
    expect(toClientConnectionString('kurrentdb+discover://h:2113')).toBe('esdb+discover://h:2113');
    expect(toClientConnectionString('kurrent://h:2113')).toBe('esdb://h:2113');
  });

  it('refuses other schemes with a ValidationError that does not repeat the password', () => {
    const err = (() => {
      try {
        return toClientConnectionString('tcp://admin:secret@h:1113');
      } catch (e: unknown) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).not.toContain('secret');
  });

  it('drops user and password, and leaves a string without them as it is', () => {
    expect(redactConnectionString('esdb://admin:changeit@localhost:2113?tls=false')).toBe(
      'esdb://localhost:2113?tls=false',
    );
    expect(redactConnectionString('esdb+discover://u:p/w@a:2113,b:2113')).toBe('esdb+discover://a:2113,b:2113');
    expect(redactConnectionString(CONNECTION)).toBe(CONNECTION);
  });
});

describe('expected revisions', () => {
  it("maps 'any', 'no_stream', 'stream_exists' and an exact revision to the client's values and back", () => {
    expect(toClientExpectedRevision('any')).toBe('any');
    expect(toClientExpectedRevision('no_stream')).toBe('no_stream');
    expect(toClientExpectedRevision('stream_exists')).toBe('stream_exists');
    expect(toClientExpectedRevision(7n)).toBe(7n);
    for (const e of ['any', 'no_stream', 'stream_exists', 0n, 7n] as const) {
      expect(fromClientExpectedRevision(toClientExpectedRevision(e))).toBe(e);
    }
  });
});

describe('positions and starting points', () => {
  it('builds a client position with commit = prepare from our commit position', () => {
    expect(toClientPosition(4242n)).toEqual({ commit: 4242n, prepare: 4242n });
  });

  it('reads the commit position and revision of an append, and reports a missing position as missing', () => {
    const position = { commit: 10n, prepare: 10n };
    expect(fromClientAppendResult({ success: true, nextExpectedRevision: 2n, position })).toEqual({
      nextRevision: 2n,
      position: 10n,
    });
    expect(fromClientAppendResult({ success: true, nextExpectedRevision: 2n })).toEqual({
      nextRevision: 2n,
      position: undefined,
    });
    // "no position" as -1, signed or as it comes back unsigned over gRPC
    for (const bad of [-1n, 2n ** 64n - 1n]) {
      expect(
        fromClientAppendResult({ success: true, nextExpectedRevision: 2n, position: { commit: bad, prepare: bad } })
          .position,
      ).toBeUndefined();
    }
  });

  it('starts reads at the start going forwards and at the end going backwards, unless told', () => {
    expect(readStreamStart(undefined, undefined)).toBe(START);
    expect(readStreamStart(undefined, 'backwards')).toBe(END);
    expect(readStreamStart(5n, 'backwards')).toBe(5n);
    expect(readStreamStart('end', 'forwards')).toBe(END);
    expect(readAllStart(undefined, 'forwards')).toBe(START);
    expect(readAllStart(undefined, 'backwards')).toBe(END);
    expect(readAllStart(99n, 'forwards')).toEqual({ commit: 99n, prepare: 99n });
    expect(toClientDirection(undefined)).toBe('forwards');
    expect(toClientDirection('backwards')).toBe('backwards');
  });

  it('starts subscriptions at the start by default, else at the given point (which the server excludes)', () => {
    expect(subscribeAllStart(undefined)).toBe(START);
    expect(subscribeAllStart('end')).toBe(END);
    expect(subscribeAllStart(7n)).toEqual({ commit: 7n, prepare: 7n });
    expect(subscribeStreamStart(undefined)).toBe(START);
    expect(subscribeStreamStart('end')).toBe(END);
    expect(subscribeStreamStart(3n)).toBe(3n);
  });
});

describe('events', () => {
  it('sends data as JSON and metadata as the exact bytes prepareEvents produced (so even 0 survives)', () => {
    const [prepared] = prepareEvents([{ id: ID, type: 'stf_gen', data: { a: [1, 'x'] }, metadata: 0 }]);
    const data = toEventData(prepared!);
    expect(data).toMatchObject({ id: ID, type: 'stf_gen', contentType: 'application/json', data: { a: [1, 'x'] } });
    expect(new TextDecoder().decode(data.metadata as Uint8Array)).toBe('0');
    // the client sends metadata bytes as they are only when they are a plain Uint8Array
    expect((data.metadata as Uint8Array).constructor).toBe(Uint8Array);
  });

  it('maps a resolved event to a StoredEvent: id, type, data, metadata, stream, revision, position, recordedAt', () => {
    expect(toStoredEvent(resolved(recorded(), { commitPosition: 4242n }))).toEqual({
      id: ID,
      type: 'stf_gen',
      data: { run_id: '100010', seq: 1 },
      metadata: { correlationId: 'c1' },
      streamName: 'run-100010',
      revision: 3n,
      position: 4242n,
      recordedAt: created,
    });
  });

  it('gives absent metadata as {} and decodes metadata and data left as bytes', () => {
    const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(toStoredEvent(resolved(recorded({ metadata: undefined })))!.metadata).toEqual({});
    expect(toStoredEvent(resolved(recorded({ metadata: bytes('not json') })))!.metadata).toBe('not json');
    const binary = { ...recorded(), isJson: false, data: bytes('{"k":1}') } as unknown as JSONRecordedEvent;
    expect(toStoredEvent(resolved(binary))!.data).toEqual({ k: 1 });
    const text = { ...recorded(), isJson: false, data: bytes('plain') } as unknown as JSONRecordedEvent;
    expect(toStoredEvent(resolved(text))!.data).toBe('plain');
  });

  it("takes the record's own position, else the read's commit position", () => {
    expect(toStoredEvent(resolved(recorded({ position: undefined }), { commitPosition: 77n }))!.position).toBe(77n);
    // a resolved link: the read's commit position is the link's, the event keeps its own
    expect(toStoredEvent({ event: recorded(), link: link({}), commitPosition: 9000n })!.position).toBe(4242n);
  });

  it('refuses an event without any position (servers before 22.6), and skips a resolved event without an event', () => {
    expect(() => toStoredEvent(resolved(recorded({ position: undefined })))).toThrow(StoreUnavailableError);
    expect(toStoredEvent(resolved(undefined, { commitPosition: 1n }))).toBeUndefined();
  });

  it('carries the retry count of a competing-consumer delivery', () => {
    expect(toGroupEvent({ event: recorded(), retryCount: 2 })).toMatchObject({
      id: ID,
      retryCount: 2,
      position: 4242n,
    });
    expect(toGroupEvent({ retryCount: 0 })).toBeUndefined();
  });

  it('gives a replayed parked event the original position, not the parked link position the server reports', () => {
    // The server builds the event record with the link's position (e.OriginalPosition) for a linked delivery.
    const replayed = {
      event: recorded({ position: { commit: 9000n, prepare: 9000n } }),
      link: link({}),
      retryCount: 0,
    };
    expect(carriesLinkPosition(replayed)).toBe(true);
    expect(carriesLinkPosition({ event: recorded(), retryCount: 0 } as ResolvedEvent)).toBe(false);
    expect(carriesLinkPosition({ link: link({}) })).toBe(false);
    expect(toGroupEvent(replayed, 4242n)).toMatchObject({ id: ID, position: 4242n, revision: 3n, retryCount: 0 });
    expect(toParkedEvent(replayed, 4242n)!.event.position).toBe(4242n);
  });

  it("passes the server's filter checkpoints on as commit positions (filtered reads stop on them)", () => {
    const seen: bigint[] = [];
    for (const filter of [undefined, { eventTypePrefix: ['stf_'] }, { streamPrefix: ['run-'] }]) {
      const plan = planFilter(filter, (p) => seen.push(p));
      void plan.server.checkpointReached!({} as never, { commit: 77n, prepare: 70n });
    }
    expect(seen).toEqual([77n, 77n, 77n]);
    expect(planFilter(undefined).server.checkpointReached).toBeUndefined();
  });

  it('treats $ streams, $ types and checkpoint streams as internal', () => {
    expect(isInternalEvent('$stats-0.0.0.0:2113', 'x')).toBe(true);
    expect(isInternalEvent('run-1', '$metadata')).toBe(true);
    expect(isInternalEvent('$ce-run', '$>')).toBe(true);
    expect(isInternalEvent('swf-checkpoint-data-agent', 'CheckpointSet')).toBe(true);
    expect(isInternalEvent('run-1', 'stf_gen')).toBe(false);
  });
});

describe('checkpoints', () => {
  it('names one stream per subscriber and round-trips the position through its event', () => {
    expect(checkpointStreamOf('data-agent')).toBe('swf-checkpoint-data-agent');
    const data = toCheckpointEventData('data-agent', 123456789012345678901234567890n, ID);
    expect(data).toMatchObject({ id: ID, type: 'CheckpointSet', contentType: 'application/json' });
    const event = recorded({ streamId: 'swf-checkpoint-data-agent', type: 'CheckpointSet', data: data.data as never });
    expect(checkpointFrom(resolved(event))).toBe(123456789012345678901234567890n);
    expect(checkpointFrom({})).toBeUndefined();
  });

  it('refuses bad names and positions, and reports an unreadable checkpoint event as corrupt', () => {
    expect(() => checkpointStreamOf('')).toThrow(ValidationError);
    expect(() => checkpointStreamOf(42)).toThrow(ValidationError);
    expect(() => toCheckpointEventData('x', -1n, ID)).toThrow(ValidationError);
    expect(() => toCheckpointEventData('x', 5, ID)).toThrow(ValidationError);
    expect(() => checkpointFrom(resolved(recorded({ data: { position: 'soon' } })))).toThrow(StoreCorruptError);
  });
});

describe('filters', () => {
  it('without a filter, has the server drop system event types', () => {
    const plan = planFilter(undefined);
    expect(plan.server).toMatchObject({ filterOn: 'eventType', regex: '^[^$].*' });
    expect(plan.accepts('run-1', 'stf_gen')).toBe(true);
    expect(plan.accepts('$$run-1', 'x')).toBe(false);
  });

  it('sends stream prefixes alone to the server as a stream-name filter', () => {
    const plan = planFilter({ streamPrefix: ['run-', 'data-'] });
    expect(plan.server).toMatchObject({ filterOn: 'streamName', prefixes: ['run-', 'data-'] });
    expect(plan.accepts('run-1', 'stf_gen')).toBe(true);
    expect(plan.accepts('other-1', 'stf_gen')).toBe(false);
  });

  it('sends type prefixes to the server and checks stream prefixes on the client when both are given', () => {
    const plan = planFilter({ streamPrefix: ['run-'], eventTypePrefix: ['slice'] });
    expect(plan.server).toMatchObject({ filterOn: 'eventType', prefixes: ['slice'] });
    expect(plan.accepts('run-1', 'slice_result')).toBe(true);
    expect(plan.accepts('data-1', 'slice_result')).toBe(false);
    expect(plan.accepts('run-1', 'stf_gen')).toBe(false);
  });

  it('treats empty prefix lists as no constraint and refuses prefixes that are not strings', () => {
    expect(planFilter({ streamPrefix: [], eventTypePrefix: [] }).server).toMatchObject({ regex: '^[^$].*' });
    expect(() => planFilter({ streamPrefix: 'run-' as unknown as string[] })).toThrow(ValidationError);
    expect(() => planFilter({ eventTypePrefix: [1 as unknown as string] })).toThrow(ValidationError);
  });

  it('server filter then client check keeps exactly the events the port filter keeps, minus internal ones', () => {
    // Stream names and event types are never empty (validation.ts).
    const name = fc.stringMatching(/^\$?[a-c]{1,3}-?[a-c]{0,2}$/);
    const prefixes = fc.option(fc.array(fc.stringMatching(/^\$?[a-c]{0,2}$/), { maxLength: 3 }), { nil: undefined });
    fc.assert(
      fc.property(prefixes, prefixes, name, name, (streamPrefix, eventTypePrefix, stream, type) => {
        const filter = { streamPrefix, eventTypePrefix };
        const plan = planFilter(filter);
        const server = plan.server;
        const subject = server.filterOn === 'streamName' ? stream : type;
        const passesServer =
          'prefixes' in server
            ? server.prefixes.some((p) => subject.startsWith(p))
            : new RegExp(server.regex).test(subject);
        const delivered = passesServer && plan.accepts(stream, type);
        expect(delivered).toBe(matchesFilter(filter, stream, type) && !isInternalEvent(stream, type));
        expect(clientPredicate(filter)(stream, type)).toBe(delivered);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('competing consumers', () => {
  it('creates groups round robin from the start, 10 retries, 30 s timeout, one event in flight per member', () => {
    const { settings, bufferSize } = planGroup();
    expect(settings).toMatchObject({
      startFrom: START,
      maxRetryCount: 10,
      messageTimeout: 30_000,
      consumerStrategyName: ROUND_ROBIN,
      resolveLinkTos: false,
    });
    expect(settings.readBatchSize).toBeLessThan(settings.historyBufferSize);
    expect(bufferSize).toBe(1);
  });

  it('maps maxRetryCount, ackTimeoutMs, from and bufferSize', () => {
    const { settings, bufferSize } = planGroup({ maxRetryCount: 2, ackTimeoutMs: 300, from: 'end', bufferSize: 8 });
    expect(settings).toMatchObject({ maxRetryCount: 2, messageTimeout: 300, startFrom: END });
    expect(bufferSize).toBe(8);
  });

  it('refuses options out of range', () => {
    for (const bad of [
      { maxRetryCount: -1 },
      { maxRetryCount: 1.5 },
      { ackTimeoutMs: 0 },
      { bufferSize: 0 },
      { from: 'middle' as 'start' },
    ]) {
      expect(() => planGroup(bad)).toThrow(ValidationError);
    }
  });

  it('maps nack actions, and parks a retry that reached maxRetryCount so the reason is the member’s', () => {
    expect(toClientNackAction('retry')).toBe('retry');
    expect(toClientNackAction('park')).toBe('park');
    expect(toClientNackAction('skip')).toBe('skip');
    expect(() => toClientNackAction('drop' as 'skip')).toThrow(ValidationError);
    expect(nackDecision('retry', 1, 2)).toBe('retry');
    expect(nackDecision('retry', 2, 2)).toBe('park');
    expect(nackDecision('skip', 5, 2)).toBe('skip');
    expect(nackDecision('park', 0, 2)).toBe('park');
  });

  it('names the parked stream as the server does', () => {
    expect(parkedStreamOf('slices', 'workers')).toBe('$persistentsubscription-slices::workers-parked');
  });

  it("reads a parked event's reason and time from the link's metadata, without the server's prefix", () => {
    const parked = toParkedEvent({
      event: recorded(),
      link: link({
        added: '2025-03-01T13:05:00.1234567+01:00',
        reason: "Client explicitly NAK'ed message.\nmalformed",
      }),
    });
    expect(parked).toMatchObject({ reason: 'malformed', parkedAt: new Date('2025-03-01T12:05:00.123Z') });
    expect(parked!.event).toMatchObject({ id: ID, position: 4242n, streamName: 'run-100010' });
  });

  it('keeps the server’s own reasons, accepts PascalCase, and falls back to the link’s time', () => {
    expect(toParkedEvent({ event: recorded(), link: link({ reason: 'Reached retry count of 2' }) })).toMatchObject({
      reason: 'Reached retry count of 2',
      parkedAt: new Date('2025-03-01T12:05:00.000Z'),
    });
    expect(toParkedEvent({ event: recorded(), link: link({ Reason: 'old server', Added: 'garbage' }) })).toMatchObject({
      reason: 'old server',
      parkedAt: new Date('2025-03-01T12:05:00.000Z'),
    });
    expect(toParkedEvent({ event: recorded(), link: link(undefined) })).toMatchObject({ reason: '' });
    expect(toParkedEvent({ link: link({}) })).toBeUndefined();
  });
});

describe('errors', () => {
  it('turns WrongExpectedVersionError into ExpectedVersionConflictError with stream, expected and actual', () => {
    const wrong = new WrongExpectedVersionError(undefined, { streamName: 'run-1', expected: 0n, current: 1n });
    const err = translateError(wrong, { ...ctx, stream: 'run-1', expected: 0n });
    expect(err).toBeInstanceOf(ExpectedVersionConflictError);
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect(err).toMatchObject({ stream: 'run-1', expected: 0n, actual: 1n });
    const missing = new WrongExpectedVersionError(undefined, {
      streamName: 'run-2',
      expected: 'stream_exists',
      current: 'no_stream',
    });
    expect(translateError(missing, ctx)).toMatchObject({
      stream: 'run-2',
      expected: 'stream_exists',
      actual: 'no_stream',
    });
  });

  it('turns a missing or deleted stream into StreamNotFoundError', () => {
    const err = translateError(new ClientStreamNotFoundError(undefined, 'run-9'), ctx);
    expect(err).toBeInstanceOf(StreamNotFoundError);
    expect(err).toMatchObject({ stream: 'run-9' });
    expect(translateError(StreamDeletedError.fromStreamName('run-8'), ctx)).toMatchObject({ stream: 'run-8' });
    expect(isStreamNotFoundError(new ClientStreamNotFoundError(undefined, 'x'))).toBe(true);
    expect(isStreamNotFoundError(new UnavailableError())).toBe(false);
  });

  it('turns an unreachable server into StoreUnavailableError naming the connection without credentials', () => {
    const connection = redactConnectionString('esdb://admin:changeit@db:2113?tls=false');
    for (const cause of [
      new UnavailableError(undefined, '14 UNAVAILABLE: No connection established'),
      new DeadlineExceededError(undefined, '4 DEADLINE_EXCEEDED'),
      // appendToStream rejects with the raw gRPC error
      Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14, details: 'No connection' }),
      new Error('Failed to discover after 10 attempts.'),
    ]) {
      const err = translateError(cause, { connection });
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err.message).toContain('esdb://db:2113?tls=false');
      expect(err.message).not.toContain('changeit');
    }
  });

  it('says access was denied, with a hint at the credentials', () => {
    const err = translateError(new AccessDeniedError(undefined, 'Access denied'), ctx);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err.message).toMatch(/denied access.*user and password/);
  });

  it('maps persistent subscription errors and recognises "group exists"', () => {
    const missing = new PersistentSubscriptionDoesNotExistError(undefined, { streamName: 'q', groupName: 'w' });
    expect(translateError(missing, { ...ctx, stream: 'q', group: 'w' })).toBeInstanceOf(NotFoundError);
    // the server's own error carries its details in gRPC metadata
    const serviceError = Object.assign(new Error('6 ALREADY_EXISTS'), {
      code: 6,
      details: 'exists',
      metadata: { getMap: () => ({ 'stream-name': 'q', 'group-name': 'w' }) },
    }) as unknown as ConstructorParameters<typeof PersistentSubscriptionExistsError>[0];
    const exists = new PersistentSubscriptionExistsError(serviceError);
    expect(isGroupExistsError(exists)).toBe(true);
    expect(isGroupExistsError(new UnavailableError())).toBe(false);
    expect(translateError(exists, ctx)).toBeInstanceOf(ConcurrencyError);
  });

  it('turns an oversized append into a ValidationError', () => {
    const err = translateError(MaxAppendSizeExceededError.fromMaxAppendSize(1024), { ...ctx, stream: 'big' });
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain('1024');
  });

  it('passes our own errors and programming errors through unchanged', () => {
    const ours = new ValidationError('bad');
    expect(translateError(ours, ctx)).toBe(ours);
    const bug = new TypeError('x is undefined');
    expect(translateError(bug, ctx)).toBe(bug);
    expect(translateError('boom', ctx)).toBeInstanceOf(StoreUnavailableError);
  });
});
