/** Rebuilding a machine's snapshot from events with XState's pure `initialTransition`/`transition`. */
import {
  initialTransition,
  transition,
  type AnyStateMachine,
  type EventFromLogic,
  type InputFrom,
  type SnapshotFrom,
} from 'xstate';

/**
 * Folds `events` from the machine's initial snapshot (or from `from`): the same snapshot a live actor fed the
 * same events would have. Pure; for hot folds use the compiled fast path (`compileMachine`).
 */
export function fold<M extends AnyStateMachine>(
  machine: M,
  events: Iterable<EventFromLogic<M>>,
  options: { input?: InputFrom<M>; from?: SnapshotFrom<M> } = {},
): SnapshotFrom<M> {
  let snapshot: SnapshotFrom<M> =
    options.from ??
    (initialTransition as unknown as (m: M, input?: InputFrom<M>) => [SnapshotFrom<M>])(machine, options.input)[0];
  for (const event of events) snapshot = transition(machine, snapshot, event)[0];
  return snapshot;
}

/** The part of a snapshot the rules produce (`value`, `context`), for comparing XState and fast-path snapshots. */
export const stateOf = <C>(snapshot: { value: unknown; context: C }): { value: unknown; context: C } => ({
  value: snapshot.value,
  context: snapshot.context,
});
