/**
 * The port's subscriptions over the client's Node streams: catch-up subscriptions (`$all` or one stream) and
 * competing consumers (a persistent subscription to a stream).
 *
 * The client's subscriptions are Readables fed by a gRPC call. Cancelling the call does not end the Readable,
 * so `unsubscribe()` cancels the call AND destroys the Readable, and the iterator treats the resulting close as
 * the end it asked for.
 *
 * A dropped connection ends the client's subscription with an error, and the client does not restore it: it only
 * marks its channel for reconnection on the next call (`dist/Client/index.js`, `shouldReconnect` / `handleError`:
 * UnavailableError and CancelledError; `GRPCStreamCreator` reports a finished stream's error there). So both kinds
 * of subscription open a new call themselves after a transient failure, with exponential backoff and a log line:
 * catch-up subscriptions from the last event they delivered, groups by reconnecting to the group (the server keeps
 * its delivery state and re-offers what this member held).
 */
import type {
  EventStoreDBClient,
  PersistentSubscriptionToStream,
  PersistentSubscriptionToStreamResolvedEvent,
} from '@eventstore/db-client';
import { IllegalStateError, StoreUnavailableError } from '../../errors.js';
import type { GroupEvent, GroupSubscription, NackAction, StoredEvent, Subscription } from '../eventStore.js';
import {
  type ClientResolvedEvent,
  type ErrorContext,
  type GroupPlan,
  carriesLinkPosition,
  isGroupExistsError,
  isTransientError,
  nackDecision,
  toClientNackAction,
  toGroupEvent,
  translateError,
} from './mapping.js';
import { ReadableQueue, type ReadableSource } from './readableQueue.js';

/** How long an append waits for a subscription from 'end' to be confirmed before going ahead anyway. */
const CONFIRMATION_TIMEOUT_MS = 5_000;

export interface Closable {
  unsubscribe(): Promise<void>;
}

/** The part of pino the adapter uses. */
export interface StoreLogger {
  warn(fields: object, message: string): void;
}

export interface ResubscribePolicy {
  /** Wait before the first new attempt; doubles per failed attempt. */
  initialDelayMs: number;
  maxDelayMs: number;
  logger?: StoreLogger | undefined;
}

export const DEFAULT_RESUBSCRIBE: ResubscribePolicy = { initialDelayMs: 250, maxDelayMs: 10_000 };

/** The wait before attempt `attempt` (1, 2, …): initial × 2^(attempt-1), at most the maximum. */
export const backoffDelay = (attempt: number, policy: ResubscribePolicy): number =>
  Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt - 1, 30));

/** A client subscription: a Readable with the call's cancel. */
export type ClientSubscriptionSource = ReadableSource & { unsubscribe(): Promise<void>; destroy(): unknown };

/** Resolves once the server confirmed the subscription (or failed, or took too long). */
export function confirmed(readable: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, CONFIRMATION_TIMEOUT_MS);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    readable.once('confirmation', done);
    readable.once('error', done);
    readable.once('close', done);
  });
}

async function cancel(source: ClientSubscriptionSource): Promise<void> {
  try {
    await source.unsubscribe();
  } catch {
    // The call is already gone (server down, store closed): nothing left to cancel.
  }
  source.destroy();
}

/** A wait that `unsubscribe()` cuts short. */
class Pause {
  #timer: NodeJS.Timeout | undefined;
  #resolve: (() => void) | undefined;
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
  interrupt(): void {
    clearTimeout(this.#timer);
    this.#resolve?.();
  }
}

/** A failure worth resubscribing after, translated; anything else is thrown (translated) to the consumer. */
function retryable(error: unknown, ctx: ErrorContext): Error {
  const translated = translateError(error, ctx);
  if (!isTransientError(error)) throw translated;
  return translated;
}

/** The error a subscription ended without one is retried on: the server or the connection closed the call. */
function stopReason(queue: ReadableQueue<unknown>, what: string, ctx: ErrorContext): Error {
  return new StoreUnavailableError(
    `EventStoreDB at ${ctx.connection} ended the ${what} (${queue.ending === 'end' ? 'call ended' : 'call closed'})`,
  );
}

export class CatchUpSubscription<Cursor> implements Subscription {
  #closed = false;
  #iterator: AsyncGenerator<StoredEvent> | undefined;
  #source: ClientSubscriptionSource;
  #queue: ReadableQueue<ClientResolvedEvent>;
  #after: Cursor | undefined;
  readonly #pause = new Pause();

  constructor(
    /** Opens the client's subscription after `after` (undefined: where the subscription started). */
    private readonly open: (after: Cursor | undefined) => ClientSubscriptionSource,
    /** The event to deliver, or undefined to skip it (internal, filtered out, or not after the cursor). */
    private readonly accept: (resolved: ClientResolvedEvent, after: Cursor | undefined) => StoredEvent | undefined,
    /** Where a delivered event leaves the subscription (its position, or its revision). */
    private readonly cursorOf: (event: StoredEvent) => Cursor,
    private readonly errorContext: ErrorContext,
    private readonly onClose: (s: Closable) => void,
    private readonly policy: ResubscribePolicy = DEFAULT_RESUBSCRIBE,
  ) {
    this.#source = open(undefined);
    this.#queue = new ReadableQueue(this.#source);
  }

  /** The client subscription in use (for the confirmation an append from 'end' waits for). */
  get source(): ClientSubscriptionSource {
    return this.#source;
  }

  [Symbol.asyncIterator](): AsyncGenerator<StoredEvent> {
    this.#iterator ??= this.#run();
    return this.#iterator;
  }

  async *#run(): AsyncGenerator<StoredEvent> {
    let attempt = 0;
    try {
      for (;;) {
        let failure: Error;
        try {
          for await (const resolved of this.#queue) {
            if (this.#closed) return;
            attempt = 0;
            const event = this.accept(resolved, this.#after);
            if (event) {
              this.#after = this.cursorOf(event);
              yield event;
            }
            if (this.#closed) return;
          }
          if (this.#closed) return;
          failure = stopReason(this.#queue, 'subscription', this.errorContext);
        } catch (error: unknown) {
          if (this.#closed) return;
          failure = retryable(error, this.errorContext);
        }
        attempt++;
        const delayMs = backoffDelay(attempt, this.policy);
        this.policy.logger?.warn(
          {
            err: failure.message,
            attempt,
            delayMs,
            stream: this.errorContext.stream ?? '$all',
            after: this.#after === undefined ? 'start of subscription' : String(this.#after),
          },
          'EventStoreDB subscription dropped; resubscribing from the last delivered event',
        );
        await cancel(this.#source);
        await this.#pause.wait(delayMs);
        if (this.#closed) return;
        this.#source = this.open(this.#after);
        this.#queue = new ReadableQueue(this.#source);
      }
    } finally {
      await this.unsubscribe();
    }
  }

  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    this.#pause.interrupt();
    await cancel(this.#source);
  }
}

/** What a group member needs of the client (a seam for tests). */
export type GroupClient = Pick<
  EventStoreDBClient,
  | 'createPersistentSubscriptionToStream'
  | 'getPersistentSubscriptionToStreamInfo'
  | 'subscribeToPersistentSubscriptionToStream'
>;

export class EsdbGroupSubscription implements GroupSubscription {
  #closed = false;
  #iterator: AsyncGenerator<GroupEvent> | undefined;
  #inFlight = new Map<string, PersistentSubscriptionToStreamResolvedEvent>();
  #maxRetryCount: number;
  #current:
    | { source: PersistentSubscriptionToStream; queue: ReadableQueue<PersistentSubscriptionToStreamResolvedEvent> }
    | undefined;
  readonly #pause = new Pause();
  readonly #created: Promise<void>;
  readonly #subscribed: Promise<void>;

  constructor(
    private readonly client: GroupClient,
    private readonly stream: string,
    group: string,
    private readonly plan: GroupPlan,
    private readonly errorContext: ErrorContext,
    private readonly onClose: (s: Closable) => void,
    /** The log position of an event, read from its stream (for deliveries through a link). */
    private readonly positionOf: (stream: string, revision: bigint) => Promise<bigint>,
    private readonly policy: ResubscribePolicy = DEFAULT_RESUBSCRIBE,
  ) {
    this.#maxRetryCount = plan.settings.maxRetryCount;
    // Creating the group is idempotent: whichever member comes first creates it, the others see "exists".
    this.#created = client.createPersistentSubscriptionToStream(stream, group, plan.settings).then(
      () => undefined,
      async (error: unknown) => {
        if (!isGroupExistsError(error)) throw translateError(error, errorContext);
        // Another member created it, perhaps with other settings: the server's maxRetryCount is the one that counts.
        try {
          const info = await client.getPersistentSubscriptionToStreamInfo(stream, group);
          this.#maxRetryCount = info.settings.maxRetryCount;
        } catch {
          // keep ours
        }
      },
    );
    this.#subscribed = this.#created.then(() => {
      if (!this.#closed) this.#connect(group);
    });
    // Failures surface when the subscription is iterated; until then they must not be unhandled.
    this.#subscribed.catch(() => undefined);
    this.#group = group;
  }

  readonly #group: string;

  #connect(group: string): void {
    const source = this.client.subscribeToPersistentSubscriptionToStream(this.stream, group, {
      bufferSize: this.plan.bufferSize,
    });
    this.#current = { source, queue: new ReadableQueue(source) };
  }

  /** Settles once the group exists on the server (so events appended after it reach a group from 'end'). */
  get created(): Promise<void> {
    return this.#created.catch(() => undefined);
  }

  [Symbol.asyncIterator](): AsyncGenerator<GroupEvent> {
    this.#iterator ??= this.#run();
    return this.#iterator;
  }

  async *#run(): AsyncGenerator<GroupEvent> {
    let attempt = 0;
    try {
      await this.#subscribed;
      for (;;) {
        if (this.#closed || !this.#current) return;
        const { source, queue } = this.#current;
        let failure: Error;
        try {
          for await (const resolved of queue) {
            if (this.#closed) return;
            attempt = 0;
            // A replayed parked event comes through its parked link, with the link's position: use the original's.
            const original =
              carriesLinkPosition(resolved) && resolved.event
                ? await this.positionOf(resolved.event.streamId, resolved.event.revision)
                : undefined;
            const event = toGroupEvent(resolved, original);
            if (!event) {
              // A link whose target is gone: nothing a member could do with it, keep it visible among the parked.
              await source.nack(toClientNackAction('park'), 'swf-es: the event could not be resolved', resolved);
              continue;
            }
            this.#inFlight.set(event.id, resolved);
            yield event;
            if (this.#closed) return;
          }
          if (this.#closed) return;
          failure = stopReason(queue, `group '${this.#group}'`, this.errorContext);
        } catch (error: unknown) {
          if (this.#closed) return;
          failure = retryable(error, this.errorContext);
        }
        attempt++;
        const delayMs = backoffDelay(attempt, this.policy);
        this.policy.logger?.warn(
          { err: failure.message, attempt, delayMs, stream: this.stream, group: this.#group },
          'EventStoreDB group subscription dropped; reconnecting (the server re-offers unacked events)',
        );
        // What this member held is the server's to re-offer now; acking it on the new call would be a guess.
        this.#inFlight.clear();
        await cancel(source);
        await this.#pause.wait(delayMs);
        if (this.#closed) return;
        this.#connect(this.#group);
      }
    } catch (error: unknown) {
      if (this.#closed) return;
      throw translateError(error, this.errorContext);
    } finally {
      await this.unsubscribe();
    }
  }

  /** The client's own delivery, which carries the id the server expects (the link's, for resolved links). */
  #take(event: GroupEvent): PersistentSubscriptionToStreamResolvedEvent | undefined {
    const resolved = this.#inFlight.get(event.id);
    this.#inFlight.delete(event.id);
    return resolved;
  }

  /**
   * Sends an ack or nack on the member's call. On a call that has dropped it cannot arrive: the server re-offers
   * the event after the reconnect (or its timeout), which the port allows (delivery is at least once), so that is
   * logged rather than thrown at a worker that did its job.
   */
  async #settle(
    event: GroupEvent,
    send: (
      source: PersistentSubscriptionToStream,
      resolved: PersistentSubscriptionToStreamResolvedEvent,
    ) => Promise<void>,
  ): Promise<void> {
    const resolved = this.#take(event);
    if (!resolved) return;
    try {
      await this.#subscribed;
      const current = this.#current;
      if (!current) throw new IllegalStateError(`group '${this.#group}' on '${this.stream}' is not connected`);
      if (current.queue.failed || current.queue.ending !== undefined) {
        this.#lost(event, 'the connection had dropped');
        return;
      }
      await send(current.source, resolved);
    } catch (error: unknown) {
      if (!isTransientError(error)) throw translateError(error, this.errorContext);
      this.#lost(event, translateError(error, this.errorContext).message);
    }
  }

  #lost(event: GroupEvent, why: string): void {
    this.policy.logger?.warn(
      { stream: this.stream, group: this.#group, eventId: event.id, why },
      'EventStoreDB group: ack or nack not delivered; the server will offer the event again',
    );
  }

  async ack(event: GroupEvent): Promise<void> {
    // Like the other stores, acking an event this member does not hold (any more) does nothing.
    await this.#settle(event, (source, resolved) => source.ack(resolved));
  }

  async nack(event: GroupEvent, action: NackAction, reason: string): Promise<void> {
    toClientNackAction(action); // rejects an unknown action before anything else
    const retryCount = this.#inFlight.get(event.id)?.retryCount ?? 0;
    const clientAction = nackDecision(action, retryCount, this.#maxRetryCount);
    await this.#settle(event, (source, resolved) => source.nack(clientAction, String(reason), resolved));
  }

  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    this.#inFlight.clear();
    this.#pause.interrupt();
    try {
      await this.#subscribed;
    } catch {
      return; // never connected
    }
    // The server hands the events this member held to the other members.
    if (this.#current) await cancel(this.#current.source);
  }
}
