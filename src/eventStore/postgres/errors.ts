/** Translates driver errors at the boundary: nothing above this adapter sees a pg error. */
import { isSwfError, StoreCorruptError, StoreLockedError, StoreUnavailableError } from '../../errors.js';

interface PgErrorLike {
  code?: unknown;
  constraint?: unknown;
}

export const pgCode = (e: unknown): string => {
  const code = (e as PgErrorLike | null)?.code;
  return typeof code === 'string' ? code : '';
};

/** A unique violation of the given constraint (the event id, or the (stream, revision) backstop). */
export const isUniqueViolation = (e: unknown, constraint?: string): boolean =>
  pgCode(e) === '23505' && (constraint === undefined || (e as PgErrorLike).constraint === constraint);

export function translatePgError(e: unknown, where: string): unknown {
  if (isSwfError(e)) return e;
  const code = pgCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  // Lock waits past lock_timeout, deadlocks and serialization failures: another writer held the store.
  if (code === '55P03' || code === '40P01' || code === '40001') {
    return new StoreLockedError(`the store ${where} stayed locked by another writer (${msg})`, { cause: e });
  }
  if (code === '3D000') return new StoreUnavailableError(`cannot use the store ${where}: ${msg}`, { cause: e });
  if (code === '28P01' || code === '28000') {
    return new StoreUnavailableError(`cannot log in to the store ${where}: ${msg}`, { cause: e });
  }
  if (code === '42P01' || code === '42703') {
    return new StoreCorruptError(`${where} is not a swf-es store of this version (${msg})`, { cause: e });
  }
  // Connection classes (08), shutdown (57P), resources (53: disk full, too many connections), network errors
  // (ECONNREFUSED, ETIMEDOUT, ...) and a connection the driver saw end.
  if (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    code.startsWith('53') ||
    code.startsWith('E') ||
    /Connection terminated|connection.*(closed|ended)|timeout/i.test(msg)
  ) {
    return new StoreUnavailableError(`cannot use the store ${where}: ${msg || code}`, { cause: e });
  }
  return new StoreUnavailableError(`the store ${where} failed${code ? ` (SQLSTATE ${code})` : ''}: ${msg}`, {
    cause: e,
  });
}
