/**
 * The rules of a machine as plain pure functions, shared by XState's `setup()` and the fast path, so each
 * lifecycle is defined once: the machine config says which transition runs which named update and guard; these
 * functions say what the update and the guard do.
 */
import { assign, type ActionFunction, type EventObject, type MachineContext } from 'xstate';

/** A context update: returns the fields that change. Pure. */
export type Update<C, E, P = undefined> = (context: C, event: E, params: P) => Partial<C>;
/** A guard. Pure. */
export type Guard<C, E, P = undefined> = (context: C, event: E, params: P) => boolean;

/** A lifecycle's rules: named updates (context changes), named guards, and named effects (run outside). */
export interface MachineLogic<C, E> {
  // `any` params: each update declares its own params type, checked where the machine config names it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  updates: Readonly<Record<string, Update<C, E, any>>>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  guards: Readonly<Record<string, Guard<C, E, any>>>;
  /** Actions that change nothing in the machine: the agent runtime performs them after the transition. */
  effects: readonly string[];
}

/** Why a transition was refused. The machine stays in its state and records it in `context.lastRefusal`. */
export interface Refusal {
  /** The refused event's type. */
  event: string;
  /** The state it was refused in (`physics`, `beam.ready`, ...). */
  state: string;
  reason: string;
}

/** Every machine's context carries these, so a caller can tell a refusal from a transition. */
export interface RefusalRecord {
  /** How many events were refused so far. */
  refusals: number;
  lastRefusal: Refusal | null;
}

export interface RefuseParams {
  state: string;
  reason: string;
}

/** The shared `refuse` update: the state does not change; the refusal is counted and recorded. */
export const refuse = <C extends RefusalRecord, E extends EventObject>(
  context: C,
  event: E,
  params: RefuseParams,
): Partial<C> =>
  ({
    refusals: context.refusals + 1,
    lastRefusal: { event: event.type, state: params.state, reason: params.reason },
  }) as Partial<C>;

/** A transition config that refuses `event` in `state` with `reason`. */
export const refusal = (state: string, reason: string) => ({
  actions: { type: 'refuse' as const, params: { state, reason } },
});

/** Refusal transitions for several events in one state: `refusals('standby', { STF_GEN: '...' })`. */
export function refusals<K extends string>(
  state: string,
  reasons: Record<K, string>,
): Record<K, ReturnType<typeof refusal>> {
  const out = {} as Record<K, ReturnType<typeof refusal>>;
  for (const key of Object.keys(reasons) as K[]) out[key] = refusal(state, reasons[key]);
  return out;
}

/**
 * The refusal a transition made: compare the snapshots before and after. Works for XState snapshots and
 * fast-path snapshots alike.
 */
export function refusalOf(before: { context: RefusalRecord }, after: { context: RefusalRecord }): Refusal | undefined {
  return after.context.refusals > before.context.refusals ? (after.context.lastRefusal ?? undefined) : undefined;
}

type ParamsOf<F> = F extends (context: never, event: never, params: infer P) => unknown ? P : never;

/** XState `assign` actions that call the shared updates. */
export function assignActions<
  C extends MachineContext,
  E extends EventObject,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  U extends Record<string, Update<C, E, any>>,
>(updates: U): { [K in keyof U]: ActionFunction<C, E, E, ParamsOf<U[K]>, never, never, never, never, never> } {
  const out: Record<string, unknown> = {};
  for (const [name, update] of Object.entries(updates)) {
    out[name] = assign<C, E, unknown, E, never>(({ context, event }, params) => update(context, event, params));
  }
  return out as { [K in keyof U]: ActionFunction<C, E, E, ParamsOf<U[K]>, never, never, never, never, never> };
}

/** XState guards that call the shared guards. */
export function guardPredicates<
  C extends MachineContext,
  E extends EventObject,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  G extends Record<string, Guard<C, E, any>>,
>(guards: G): { [K in keyof G]: (args: { context: C; event: E }, params: ParamsOf<G[K]>) => boolean } {
  const out: Record<string, unknown> = {};
  for (const [name, guard] of Object.entries(guards)) {
    out[name] = ({ context, event }: { context: C; event: E }, params: unknown) => guard(context, event, params);
  }
  return out as { [K in keyof G]: (args: { context: C; event: E }, params: ParamsOf<G[K]>) => boolean };
}

/** XState actions for the effects: they do nothing inside the machine; `transition()` returns them. */
export function effectActions<K extends string>(names: readonly K[]): Record<K, () => void> {
  const out = {} as Record<K, () => void>;
  for (const name of names) out[name] = () => undefined;
  return out;
}
