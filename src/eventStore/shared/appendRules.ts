/**
 * The append rules every adapter that decides them itself applies (in-memory and SQLite in full; PostgreSQL the
 * repeat rule, its expected-revision check being a conditional update in SQL; EventStoreDB's server decides both):
 *
 * - the expected-revision check: `any` always holds, `no_stream` while the stream has no event, `stream_exists`
 *   once it has one, a revision when it is the stream's last;
 * - the exact-repeat rule: an append whose event ids are already stored, in the same stream, in the same order,
 *   with the same types, at the place its expected revision names, is a retry of that append and returns its first
 *   result without writing anything. Any other mix of stored and new ids is a conflict; a commit repeats only
 *   when every one of its appends does.
 */
import { ConcurrencyError, ExpectedVersionConflictError } from '../../errors.js';
import type { AppendResult, ExpectedRevision, StoredEvent } from '../eventStore.js';
import type { PreparedAppend } from '../validation.js';

/**
 * The conflict an append to a stream whose last revision is `current` (negative: no stream) meets, or undefined
 * when `expected` allows it.
 */
export function expectedRevisionConflict(
  stream: string,
  expected: ExpectedRevision,
  current: number | bigint,
): ExpectedVersionConflictError | undefined {
  const holds =
    expected === 'any' ||
    (expected === 'no_stream'
      ? current < 0
      : expected === 'stream_exists'
        ? current >= 0
        : expected === BigInt(current));
  return holds
    ? undefined
    : new ExpectedVersionConflictError(stream, expected, current < 0 ? 'no_stream' : BigInt(current));
}

/** Where an event id is stored. */
export type StoredPlace = Pick<StoredEvent, 'streamName' | 'revision' | 'position' | 'type'>;

/**
 * The exact-repeat rule for one append: its first result when it repeats a stored append exactly, undefined when
 * none of its ids is stored, a ConcurrencyError otherwise. `lookup` says where an id is stored.
 */
export function repeatedAppend(
  append: PreparedAppend,
  lookup: (id: string) => StoredPlace | undefined,
): AppendResult | undefined {
  const { stream, events, expected } = append;
  const found = events.map((e) => lookup(e.id));
  const first = found[0];
  if (!first) {
    const clash = found.findIndex((r) => r !== undefined);
    if (clash < 0) return undefined;
    throw new ConcurrencyError(
      `event id ${events[clash]!.id} is already stored in stream '${found[clash]!.streamName}'`,
    );
  }
  const same = found.every(
    (r, i) =>
      r !== undefined &&
      r.streamName === stream &&
      r.revision === first.revision + BigInt(i) &&
      r.type === events[i]!.type,
  );
  const placeOk =
    typeof expected === 'bigint'
      ? first.revision === expected + 1n
      : expected === 'no_stream'
        ? first.revision === 0n
        : true;
  if (!same || !placeOk) {
    throw new ConcurrencyError(
      `event id ${events[0]!.id} is already stored (stream '${first.streamName}', revision ${first.revision}) and this append does not repeat it exactly`,
    );
  }
  const last = found[found.length - 1]!;
  return { nextRevision: last.revision, position: last.position };
}

/**
 * The exact-repeat rule for a commit: the first results when every append repeats exactly, undefined when none
 * touches a stored id, a ConcurrencyError for any other mix.
 */
export function repeatedCommit(
  batch: readonly PreparedAppend[],
  lookup: (id: string) => StoredPlace | undefined,
): AppendResult[] | undefined {
  const results = batch.map((b) => repeatedAppend(b, lookup));
  const repeats = results.filter((r) => r !== undefined).length;
  if (repeats === 0) return undefined;
  if (repeats < results.length) {
    const fresh = batch[results.findIndex((r) => r === undefined)]!;
    throw new ConcurrencyError(`commit mixes already-stored events with new ones (stream '${fresh.stream}')`);
  }
  return results as AppendResult[];
}
