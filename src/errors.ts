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

export const isSwfError = (e: unknown): e is SwfError => e instanceof SwfError;

export const describeError = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * One way to ask what an error is. By class, never by a duck-typed `code`: an adapter translates its driver's
 * errors into ours at the boundary, so everything above it can rely on the class.
 */
export const isNotFoundError = (e: unknown): e is NotFoundError => e instanceof NotFoundError;
export const isConcurrencyError = (e: unknown): e is ConcurrencyError => e instanceof ConcurrencyError;
export const isIllegalStateError = (e: unknown): e is IllegalStateError => e instanceof IllegalStateError;
export const isValidationError = (e: unknown): e is ValidationError => e instanceof ValidationError;
export const isStoreUnavailableError = (e: unknown): e is StoreUnavailableError => e instanceof StoreUnavailableError;
