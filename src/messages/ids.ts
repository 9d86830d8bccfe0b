/**
 * Deterministic ids. An agent derives each output event's id from its input event's id, the purpose and (for
 * retries) the attempt, so a handler re-run after a crash appends the same ids and the store drops the repeats.
 */
import { createHash } from 'node:crypto';

/**
 * A UUID (version 5 layout: sha1 of the inputs, version and variant bits set) from a seed and parts.
 * `deriveId(inputEvent.id, 'stf_ready')`, `deriveId(sliceResult.id, 'slice', sliceName, attempt + 1)`.
 * The inputs are hashed as a JSON array, so `('a', 'b:c')` and `('a:b', 'c')` differ.
 */
export function deriveId(seed: string, ...parts: readonly (string | number | bigint)[]): string {
  const key = JSON.stringify([seed, ...parts.map((p) => (typeof p === 'bigint' ? `${p}n` : p))]);
  const b = createHash('sha1').update(key).digest();
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);
