/**
 * The fast path: transition tables derived from an XState machine's definition, for hot folds (100k slices, a
 * day's log). The machine stays the single source of the rules: the tables are read off `machine.root` (states,
 * transitions, targets, guard and action names and params), and guards and context updates are the same pure
 * functions `setup()` was given (`MachineLogic`). Property tests check it agrees with XState's `transition()`.
 *
 * Supported: nested (compound) states, guarded transition lists, targetless transitions, transitions declared on
 * ancestors, named actions/guards with static params. Anything else (parallel, history or final states, entry/exit
 * actions, always/after/invoke, wildcard events, inline functions) is refused when compiling, so the fast path
 * never silently diverges from XState.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition, EventObject, StateValue } from 'xstate';
import { ValidationError } from '../errors.js';
import type { Guard, MachineLogic, Update } from './logic.js';

/** A machine snapshot reduced to what the rules read and write. XState snapshots fit this shape too. */
export interface FastSnapshot<C> {
  readonly value: StateValue;
  readonly context: C;
}

/** An effect the agent performs after a transition (an action that is not a context update). */
export interface Effect {
  type: string;
  params: unknown;
}

interface CompiledTransition<C, E> {
  guard: Guard<C, E, unknown> | undefined;
  guardParams: unknown;
  updates: { fn: Update<C, E, unknown>; params: unknown }[];
  effects: Effect[];
  /** undefined: stay in the current state. */
  target: { key: string; value: StateValue } | undefined;
}

export interface CompiledMachine<C, E extends EventObject, I = undefined> {
  readonly id: string;
  /** Leaf state keys (`physics`, `beam.ready`) in document order. */
  readonly states: readonly string[];
  /** The initial snapshot (input as for the XState machine). */
  initial(input?: I): FastSnapshot<C>;
  /** The next snapshot and the effects to perform; the same snapshot (and no effects) if nothing handles it. */
  transition(snapshot: FastSnapshot<C>, event: E): [FastSnapshot<C>, readonly Effect[]];
  /** The next snapshot only (folds). */
  next(snapshot: FastSnapshot<C>, event: E): FastSnapshot<C>;
  /** Folds events from `snapshot` (default: the initial snapshot). */
  fold(events: Iterable<E>, from?: FastSnapshot<C>): FastSnapshot<C>;
  /** The leaf key of a state value: `{ beam: 'ready' }` → `beam.ready`. */
  keyOf(value: StateValue): string;
}

const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

/**
 * A transition's action or guard reference as XState stores it: a name, `{ type, params }`, or an inline function.
 * (xstate's root module exports `UnknownAction` but not `UnknownGuard`, so both are read off the transition type.)
 */
export type Reference = AnyTransitionDefinition['actions'][number] | NonNullable<AnyTransitionDefinition['guard']>;

function unsupported(machineId: string, where: string, what: string): never {
  throw new ValidationError(`fast path: machine '${machineId}' ${where}: ${what} is not supported`, { field: where });
}

function valueOf(path: readonly string[]): StateValue {
  let v: StateValue = path[path.length - 1]!;
  for (let i = path.length - 2; i >= 0; i--) v = { [path[i]!]: v };
  return v;
}

function named(ref: Reference, machineId: string, where: string): { type: string; params: unknown } {
  if (typeof ref === 'string') return { type: ref, params: undefined };
  if (typeof ref === 'function') return unsupported(machineId, where, 'an inline (unnamed) action or guard');
  const { type, params } = ref;
  if (typeof params === 'function') unsupported(machineId, where, `dynamic params of '${type}'`);
  return { type, params };
}

/** Derives the transition tables of `machine`, with `logic` supplying the named guards and updates. */
export function compileMachine<C, E extends EventObject, I = undefined>(
  machine: AnyStateMachine,
  logic: MachineLogic<C, E>,
): CompiledMachine<C, E, I> {
  const root: AnyStateNode = machine.root;
  const machineId = root.id;
  const effects = new Set(logic.effects);
  const leaves: AnyStateNode[] = [];

  const check = (node: AnyStateNode): void => {
    const where = node.path.length ? node.path.join('.') : '(root)';
    if (node.type === 'parallel' || node.type === 'history' || node.type === 'final') {
      unsupported(machineId, where, `a ${node.type} state`);
    }
    if (node.entry.length || node.exit.length) unsupported(machineId, where, 'entry/exit actions');
    if (node.always?.length) unsupported(machineId, where, "'always' transitions");
    if (node.config.after) unsupported(machineId, where, "'after' transitions");
    if (node.config.invoke) unsupported(machineId, where, 'invoke');
    for (const [eventType, list] of node.transitions) {
      if (eventType.includes('*')) unsupported(machineId, where, `the wildcard event '${eventType}'`);
      for (const t of list) {
        if (t.reenter) unsupported(machineId, where, 'reenter');
        if (t.target && t.target.length > 1) unsupported(machineId, where, 'multiple targets');
      }
    }
    const children = Object.values(node.states);
    if (children.length === 0 && node !== root) leaves.push(node);
    children.forEach(check);
  };
  check(root);

  const leafOf = (node: AnyStateNode): AnyStateNode => {
    let n = node;
    while (Object.keys(n.states).length > 0) {
      const t = n.initial.target[0]; // XState gives every node one; its target is empty if none is configured
      if (!t) unsupported(machineId, n.path.join('.'), 'a compound state without an initial state');
      n = t;
    }
    return n;
  };

  const targets = new Map<AnyStateNode, { key: string; value: StateValue }>();
  const valueKeys = new WeakMap<object, string>();
  for (const leaf of leaves) {
    const value = valueOf(leaf.path);
    const key = leaf.path.join('.');
    targets.set(leaf, { key, value });
    if (typeof value === 'object') valueKeys.set(value, key);
  }

  const compileTransition = (t: AnyTransitionDefinition, where: string): CompiledTransition<C, E> => {
    let guard: Guard<C, E, unknown> | undefined;
    let guardParams: unknown;
    if (t.guard !== undefined) {
      const g = named(t.guard, machineId, where);
      guard = logic.guards[g.type];
      if (!guard) unsupported(machineId, where, `the guard '${g.type}' (not in the machine's logic)`);
      guardParams = g.params;
    }
    const updates: CompiledTransition<C, E>['updates'] = [];
    const fx: Effect[] = [];
    for (const a of t.actions) {
      const { type, params } = named(a, machineId, where);
      const fn = logic.updates[type];
      if (fn) updates.push({ fn, params });
      else if (effects.has(type)) fx.push({ type, params });
      else unsupported(machineId, where, `the action '${type}' (neither an update nor an effect)`);
    }
    return {
      guard,
      guardParams,
      updates,
      effects: fx,
      target: t.target?.[0] ? targets.get(leafOf(t.target[0])) : undefined,
    };
  };

  // leaf key → event type → candidates (the leaf's own first, then its ancestors'), as XState selects them.
  const table = new Map<string, Map<string, CompiledTransition<C, E>[]>>();
  for (const leaf of leaves) {
    const byEvent = new Map<string, CompiledTransition<C, E>[]>();
    for (let n: AnyStateNode | undefined = leaf; n; n = n.parent) {
      for (const [eventType, list] of n.transitions) {
        const where = `${n.path.join('.') || '(root)'} on ${eventType}`;
        const compiled = list.map((t) => compileTransition(t, where));
        byEvent.set(eventType, [...(byEvent.get(eventType) ?? []), ...compiled]);
      }
    }
    table.set(targets.get(leaf)!.key, byEvent);
  }

  const initialLeaf = targets.get(leafOf(root))!;
  // `AnyStateMachine` erases the context type: `C` comes from `logic`, so the config's context (a value, or a
  // factory of the input) is read as unknown and typed as `C` below, where XState's own `initialTransition` would.
  const contextConfig: unknown = machine.config.context;

  const keyOf = (value: StateValue): string => {
    if (typeof value === 'string') return value;
    const cached = valueKeys.get(value);
    if (cached !== undefined) return cached;
    const parts: string[] = [];
    let v: StateValue | undefined = value;
    while (v !== undefined && typeof v === 'object') {
      const [k, child]: [string, StateValue | undefined] = Object.entries(v)[0] ?? ['', undefined];
      parts.push(k);
      v = child;
    }
    if (typeof v === 'string') parts.push(v);
    return parts.join('.');
  };

  const select = (snapshot: FastSnapshot<C>, event: E): CompiledTransition<C, E> | undefined => {
    const candidates = table.get(keyOf(snapshot.value))?.get(event.type);
    if (candidates === undefined) return undefined;
    const context = snapshot.context;
    for (let i = 0; i < candidates.length; i++) {
      const t = candidates[i]!;
      if (t.guard === undefined || t.guard(context, event, t.guardParams)) return t;
    }
    return undefined;
  };

  const apply = (snapshot: FastSnapshot<C>, event: E, t: CompiledTransition<C, E>): FastSnapshot<C> => {
    let context = snapshot.context;
    const updates = t.updates;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i]!;
      context = { ...context, ...u.fn(context, event, u.params) };
    }
    return { value: t.target ? t.target.value : snapshot.value, context };
  };

  const next = (snapshot: FastSnapshot<C>, event: E): FastSnapshot<C> => {
    const t = select(snapshot, event);
    return t ? apply(snapshot, event, t) : snapshot;
  };

  const initial = (input?: I): FastSnapshot<C> => {
    const context =
      typeof contextConfig === 'function'
        ? (contextConfig as (args: { input: unknown }) => C)({ input })
        : (contextConfig as C);
    return { value: initialLeaf.value, context };
  };

  return {
    id: machineId,
    states: leaves.map((l) => targets.get(l)!.key),
    initial,
    transition: (snapshot, event) => {
      const t = select(snapshot, event);
      return t ? [apply(snapshot, event, t), t.effects.length ? t.effects : NO_EFFECTS] : [snapshot, NO_EFFECTS];
    },
    next,
    fold: (events, from) => {
      let s = from ?? initial();
      for (const e of events) s = next(s, e);
      return s;
    },
    keyOf,
  };
}
