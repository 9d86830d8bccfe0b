/** Reading a stream's state for a decision: folded, with the revision an append must expect. */
import { isNotFoundError } from '../errors.js';
import type { EventStore, StoredEvent } from './eventStore.js';

/** A stream's last revision, or `no_stream` when it has no events. */
export type StreamRevision = bigint | 'no_stream';

/** The stream's last revision (one event read backwards), or `no_stream`. */
export async function lastRevision(store: EventStore, stream: string): Promise<StreamRevision> {
  try {
    for await (const e of store.readStream(stream, { direction: 'backwards', maxCount: 1 })) return e.revision;
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return 'no_stream';
}

/** The stream folded with `evolve` from `initial`, and its last revision (`no_stream`: `initial` as it was). */
export async function aggregateStream<S>(
  store: EventStore,
  stream: string,
  evolve: (state: S, event: StoredEvent) => S,
  initial: S,
): Promise<{ state: S; revision: StreamRevision }> {
  let state = initial;
  let revision: StreamRevision = 'no_stream';
  try {
    for await (const e of store.readStream(stream)) {
      state = evolve(state, e);
      revision = e.revision;
    }
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return { state, revision };
}
