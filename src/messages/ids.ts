/**
 * Deterministic ids. An agent derives each output event's id from its input event's id, the purpose and (for
 * retries) the attempt, so a handler re-run after a crash appends the same ids and the store drops the repeats.
 */
import { hash } from 'node:crypto';

/** A stored event, as a seed: its id and, when it has one, its revision in its stream. */
export interface IdSeed {
  readonly id: string;
  readonly revision?: bigint;
}

/**
 * A UUID derived from a seed and parts: sha1 of the inputs, hashed as a JSON array (so `('a', 'b:c')` and
 * `('a:b', 'c')` differ). `deriveId(inputEvent, 'stf_ready')`, `deriveId(sliceResult, 'slice', sliceName, attempt)`.
 *
 * - Seeded by a string (or an event without a revision): version 5 layout, all 122 bits from the hash.
 * - Seeded by a stored event: version 8 layout whose first 48 bits are the event's revision in its stream and
 *   the other 74 the hash, in the manner of UUIDv7. An agent works through its input streams in order, so the
 *   ids it writes in one commit sit together in the store's id index instead of at random places in it: a commit
 *   rewrites a few index pages rather than one per event, which makes a long run on SQLite much faster
 *   (docs/messages.md, "Event ids"). The revision, unlike the log position, is the same in a store the run is
 *   imported into, so `swf replay --check` re-derives the recorded ids there too; and the id is still a pure
 *   function of the input event, so a handler re-run after a crash derives the same ids and the store drops the
 *   repeats.
 */
export function deriveId(seed: string | IdSeed, ...parts: readonly (string | number | bigint)[]): string {
  const seedId = typeof seed === 'string' ? seed : seed.id;
  const key = JSON.stringify([seedId, ...parts.map((p) => (typeof p === 'bigint' ? `${p}n` : p))]);
  const b = hash('sha1', key, 'buffer');
  const revision = typeof seed === 'string' ? undefined : seed.revision;
  if (revision === undefined) {
    b[6] = (b[6]! & 0x0f) | 0x50;
  } else {
    b.writeUIntBE(Number(BigInt.asUintN(48, revision)), 0, 6);
    b[6] = (b[6]! & 0x0f) | 0x80;
  }
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);
