/**
 * Read, decide, append: the one way a command changes a stream (Emmett's `handle`). The stream is folded into
 * its state with its last revision, the pure `decide` gives the events, and they are appended expecting that
 * revision. If someone appended meanwhile, the command is decided once more on the new state; a second conflict
 * is the caller's (a ConcurrencyError). The CLI, the REST write API and the MCP tools all call services built on it.
 */
import { type EventStore, type NewEvent, type StoredEvent } from '../eventStore/eventStore.js';
import { aggregateStream, type StreamRevision } from '../eventStore/streamState.js';
import { isExpectedVersionConflict } from '../errors.js';

export interface Decider<S, C> {
  initial: S;
  evolve: (state: S, event: StoredEvent) => S;
  /** Pure: the events the command causes in this state, or a thrown SwfError (not found, illegal state, ...). */
  decide: (command: C, state: S) => NewEvent[];
}

export interface Handled<S> {
  /** The state the command was decided on. */
  state: S;
  events: NewEvent[];
  /** The stream's revision after the append (`no_stream` if nothing was appended to an empty stream). */
  revision: StreamRevision;
}

export async function handle<S, C>(
  store: EventStore,
  stream: string,
  decider: Decider<S, C>,
  command: C,
): Promise<Handled<S>> {
  for (let attempt = 1; ; attempt++) {
    const { state, revision } = await aggregateStream(store, stream, decider.evolve, decider.initial);
    const events = decider.decide(command, state);
    if (events.length === 0) return { state, events, revision };
    try {
      const r = await store.appendToStream(stream, events, { expectedRevision: revision });
      return { state, events, revision: r.nextRevision };
    } catch (e: unknown) {
      if (!isExpectedVersionConflict(e) || attempt >= 2) throw e;
    }
  }
}
