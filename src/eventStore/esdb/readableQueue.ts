/**
 * The client's reads and subscriptions as async iterators we can trust.
 *
 * The client (`@eventstore/db-client` 6.2.1, `dist/streams/utils/ReadStream.js` and `Subscription.js`) pipes the
 * gRPC call into a Transform and reports gRPC failures with `this.emit("error", …)`, not `destroy(error)`: the
 * Transform is neither ended nor marked errored. Node's own Readable iterator attaches its listeners only when
 * iteration starts, so an error emitted before then is missed and a later `for await` waits forever. And
 * `client.dispose()` cancels the call, an error the client ignores (`isClientCancellationError`), so a read cut off
 * by `close()` just stops. This queue listens from the moment it is created, keeps the first error for the
 * consumer, and fails with the caller's typed error as soon as the abort signal fires.
 */
import type { EventEmitter } from 'node:events';

/** Events buffered before the source is paused; it resumes once the consumer has taken half of them. */
const HIGH_WATER = 256;

export type ReadableSource = EventEmitter & {
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  readonly readableLength: number;
};

/** How the source stopped: its `end`, or `close` without one (destroyed, or a call cut short). */
export type Ending = 'end' | 'close';

export class ReadableQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #ending: Ending | undefined;
  #error: { error: unknown } | undefined;
  #aborted: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  #endWhenDrained = false;
  readonly #detach: () => void;

  constructor(
    private readonly source: ReadableSource,
    signal?: AbortSignal,
    /** The error to fail with when `signal` fires before the source has ended. */
    abortError: () => Error = () => new Error('aborted'),
  ) {
    const onData = (item: T): void => {
      this.#items.push(item);
      if (this.#items.length >= HIGH_WATER) source.pause();
      this.#notify();
    };
    const onEnd = (): void => {
      this.#ending ??= 'end';
      this.#notify();
    };
    const onClose = (): void => {
      this.#ending ??= 'close';
      this.#notify();
    };
    const onError = (error: unknown): void => {
      this.#error ??= { error };
      this.#notify();
    };
    const onAbort = (): void => {
      if (this.#ending === 'end') return;
      this.#aborted ??= { error: abortError() };
      this.#notify();
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('close', onClose);
    source.on('error', onError);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.#detach = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onClose);
      // The error listener stays: an error after we stopped listening must not crash the process.
      signal?.removeEventListener('abort', onAbort);
    };
  }

  /** True once the source reported an error (the call is gone, even if buffered events remain). */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  /** How the source stopped, once it has (undefined while it runs or when it failed). */
  get ending(): Ending | undefined {
    return this.#error ? undefined : this.#ending;
  }

  /**
   * Ends the iteration once what the source has already produced is consumed (the source itself stays open: a
   * subscription read up to a point). Events the source produces later are not delivered.
   */
  endWhenDrained(): void {
    this.#endWhenDrained = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#aborted) {
        this.#detach();
        throw this.#aborted.error;
      }
      if (this.#items.length > 0) {
        const value = this.#items.shift() as T;
        if (this.#items.length <= HIGH_WATER / 2 && this.source.isPaused()) this.source.resume();
        return { value, done: false };
      }
      if (this.#error) {
        this.#detach();
        throw this.#error.error;
      }
      if (this.#ending || (this.#endWhenDrained && this.source.readableLength === 0)) {
        this.#detach();
        return { value: undefined, done: true };
      }
      if (this.source.isPaused()) this.source.resume();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.#detach();
    this.#items = [];
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
