import type { DamagedEvent, ExpectedRevision, Revision } from './eventStore/eventStore.js';

/**
 * One error base for the whole project. Each interface (CLI, HTTP, MCP) maps `code` once:
 * exit code, HTTP status, tool error.
 */
export const ERROR_CODES = [
  'VALIDATION',
  'NOT_FOUND',
  'CONCURRENCY',
  'ILLEGAL_STATE',
  'STORE_UNAVAILABLE',
  'STORE_LOCKED',
  'STORE_CORRUPT',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export abstract class SwfError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input that breaks a rule: a bad message, config value, stream name, URL, query parameter. */
export class ValidationError extends SwfError {
  readonly code = 'VALIDATION' as const;
  constructor(
    message: string,
    readonly details: { field?: string; messageType?: string; file?: string; section?: string; key?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class NotFoundError extends SwfError {
  readonly code = 'NOT_FOUND' as const;
}

export class ConcurrencyError extends SwfError {
  readonly code = 'CONCURRENCY' as const;
}

/** A command that the current state does not allow (a lifecycle message after `completed`, ...). */
export class IllegalStateError extends SwfError {
  readonly code = 'ILLEGAL_STATE' as const;
}

/** The store cannot be reached or opened (server down, path not writable). */
export class StoreUnavailableError extends SwfError {
  readonly code = 'STORE_UNAVAILABLE' as const;
}

/** The store stayed locked by another writer past the busy timeout. */
export class StoreLockedError extends SwfError {
  readonly code = 'STORE_LOCKED' as const;
}

/** The file is not a database, or not one of ours. */
export class StoreCorruptError extends SwfError {
  readonly code = 'STORE_CORRUPT' as const;
}

/** A store used after `close()`: the same error from every adapter (exit 5, HTTP 503, like any unusable store). */
export class StoreClosedError extends StoreUnavailableError {
  constructor(readonly store: string) {
    super(`the store ${store} is closed`);
  }
}

export class StreamNotFoundError extends NotFoundError {
  constructor(readonly stream: string) {
    super(`stream '${stream}' not found`);
  }
}

export const describeExpected = (e: ExpectedRevision): string => (typeof e === 'bigint' ? e.toString() : e);

/** An append whose expected revision does not match the stream's: the one concurrency error a retry may redo. */
export class ExpectedVersionConflictError extends ConcurrencyError {
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    /** The stream's current revision, or 'no_stream'. */
    readonly actual: Revision | 'no_stream',
  ) {
    super(
      `expected revision conflict on stream '${stream}': expected ${describeExpected(expected)}, ` +
        `actual ${typeof actual === 'bigint' ? actual.toString() : actual}`,
    );
  }
}

/** An event row whose JSON does not parse (the file's bytes were changed): names the event; the store adds its path. */
export class DamagedEventError extends StoreCorruptError {
  constructor(
    readonly damaged: DamagedEvent,
    readonly store?: string,
  ) {
    super(
      `${store ? `the store ${store} holds a damaged event` : 'a damaged event'} at position ${damaged.position} ` +
        `(id ${damaged.id}, stream ${damaged.stream}): ${damaged.reason}; ` +
        '`swf events read --skip-damaged` and `swf export --skip-damaged` read past it',
    );
  }
}

export const describeError = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * One way to ask what an error is. By class, never by a duck-typed `code`: an adapter translates its driver's
 * errors into ours at the boundary, so everything above it can rely on the class. These guards are the only
 * `instanceof` tests of our errors in `src/`.
 */
export const isSwfError = (e: unknown): e is SwfError => e instanceof SwfError;
export const isValidationError = (e: unknown): e is ValidationError => e instanceof ValidationError;
export const isNotFoundError = (e: unknown): e is NotFoundError => e instanceof NotFoundError;
export const isStreamNotFoundError = (e: unknown): e is StreamNotFoundError => e instanceof StreamNotFoundError;
export const isConcurrencyError = (e: unknown): e is ConcurrencyError => e instanceof ConcurrencyError;
/** The conflict a read-decide-append loop retries (other concurrency errors, such as mixed commits, are final). */
export const isExpectedVersionConflict = (e: unknown): e is ExpectedVersionConflictError =>
  e instanceof ExpectedVersionConflictError;
export const isIllegalStateError = (e: unknown): e is IllegalStateError => e instanceof IllegalStateError;
export const isStoreUnavailableError = (e: unknown): e is StoreUnavailableError => e instanceof StoreUnavailableError;
export const isStoreClosedError = (e: unknown): e is StoreClosedError => e instanceof StoreClosedError;
export const isStoreLockedError = (e: unknown): e is StoreLockedError => e instanceof StoreLockedError;
export const isStoreCorruptError = (e: unknown): e is StoreCorruptError => e instanceof StoreCorruptError;
export const isDamagedEventError = (e: unknown): e is DamagedEventError => e instanceof DamagedEventError;
