/**
 * The port's subscriptions over the client's Node streams: catch-up subscriptions (`$all` or one stream) and
 * competing consumers (a persistent subscription to a stream).
 *
 * The client's subscriptions are Readables fed by a gRPC call. Cancelling the call does not end the Readable,
 * so `unsubscribe()` cancels the call AND destroys the Readable, and the iterator treats the resulting
 * "premature close" as the end it asked for.
 */
import type {
  EventStoreDBClient,
  PersistentSubscriptionToStream,
  PersistentSubscriptionToStreamResolvedEvent,
  ReadableSubscription,
} from '@eventstore/db-client';
import type { GroupEvent, GroupSubscription, NackAction, StoredEvent, Subscription } from '../eventStore.js';
import {
  type ClientResolvedEvent,
  type ErrorContext,
  type GroupPlan,
  isGroupExistsError,
  nackDecision,
  toClientNackAction,
  toGroupEvent,
  translateError,
} from './mapping.js';

/** How long an append waits for a subscription from 'end' to be confirmed before going ahead anyway. */
const CONFIRMATION_TIMEOUT_MS = 5_000;

export interface Closable {
  unsubscribe(): Promise<void>;
}

/** Keeps an unread subscription's error from crashing the process; the iterator still sees it. */
const swallowUnreadErrors = (readable: NodeJS.EventEmitter): void => {
  readable.on('error', () => undefined);
};

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

export class CatchUpSubscription implements Subscription {
  #closed = false;
  #iterator: AsyncGenerator<StoredEvent> | undefined;

  constructor(
    private readonly source: ReadableSubscription<ClientResolvedEvent>,
    /** The event to deliver, or undefined to skip it (internal, filtered out, or not after `from`). */
    private readonly accept: (resolved: ClientResolvedEvent) => StoredEvent | undefined,
    private readonly errorContext: ErrorContext,
    private readonly onClose: (s: Closable) => void,
  ) {
    swallowUnreadErrors(source);
  }

  [Symbol.asyncIterator](): AsyncGenerator<StoredEvent> {
    this.#iterator ??= this.#run();
    return this.#iterator;
  }

  async *#run(): AsyncGenerator<StoredEvent> {
    try {
      for await (const resolved of this.source) {
        if (this.#closed) return;
        const event = this.accept(resolved);
        if (event) yield event;
        if (this.#closed) return;
      }
    } catch (error: unknown) {
      if (this.#closed) return;
      throw translateError(error, this.errorContext);
    } finally {
      await this.unsubscribe();
    }
  }

  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    try {
      await this.source.unsubscribe();
    } catch {
      // The call is already gone (server down, store closed): nothing left to cancel.
    }
    this.source.destroy();
  }
}

export class EsdbGroupSubscription implements GroupSubscription {
  #closed = false;
  #iterator: AsyncGenerator<GroupEvent> | undefined;
  #inFlight = new Map<string, PersistentSubscriptionToStreamResolvedEvent>();
  #maxRetryCount: number;
  readonly #created: Promise<void>;
  readonly #subscribed: Promise<PersistentSubscriptionToStream>;

  constructor(
    client: EventStoreDBClient,
    stream: string,
    group: string,
    plan: GroupPlan,
    private readonly errorContext: ErrorContext,
    private readonly onClose: (s: Closable) => void,
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
      const source = client.subscribeToPersistentSubscriptionToStream(stream, group, { bufferSize: plan.bufferSize });
      swallowUnreadErrors(source);
      return source;
    });
    // Failures surface when the subscription is iterated; until then they must not be unhandled.
    this.#subscribed.catch(() => undefined);
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
    try {
      const source = await this.#subscribed;
      for await (const resolved of source) {
        if (this.#closed) return;
        const event = toGroupEvent(resolved);
        if (!event) {
          // A link whose target is gone: nothing a member could do with it, keep it visible among the parked.
          await source.nack(toClientNackAction('park'), 'swf-es: the event could not be resolved', resolved);
          continue;
        }
        this.#inFlight.set(event.id, resolved);
        yield event;
        if (this.#closed) return;
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

  async ack(event: GroupEvent): Promise<void> {
    // Like the other stores, acking an event this member does not hold (any more) does nothing.
    const resolved = this.#take(event);
    if (!resolved) return;
    try {
      const source = await this.#subscribed;
      await source.ack(resolved);
    } catch (error: unknown) {
      throw translateError(error, this.errorContext);
    }
  }

  async nack(event: GroupEvent, action: NackAction, reason: string): Promise<void> {
    toClientNackAction(action); // rejects an unknown action before anything else
    const resolved = this.#take(event);
    if (!resolved) return;
    const clientAction = nackDecision(action, resolved.retryCount, this.#maxRetryCount);
    try {
      const source = await this.#subscribed;
      await source.nack(clientAction, String(reason), resolved);
    } catch (error: unknown) {
      throw translateError(error, this.errorContext);
    }
  }

  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    this.#inFlight.clear();
    let source: PersistentSubscriptionToStream;
    try {
      source = await this.#subscribed;
    } catch {
      return; // never connected
    }
    try {
      // The server hands the events this member held to the other members.
      await source.unsubscribe();
    } catch {
      // already disconnected
    }
    source.destroy();
  }
}
