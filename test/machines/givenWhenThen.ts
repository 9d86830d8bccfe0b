/**
 * Given / when / then for machines: given events (folded with XState's `transition`) → when one event → then
 * the state, the context, the refusal and the effects. Every step also checks that the fast path agrees with
 * XState, so each behaviour test is an equivalence test too.
 */
import { expect } from 'vitest';
import { initialTransition, transition, type AnyStateMachine, type EventObject } from 'xstate';
import type { CompiledMachine, RefusalRecord } from '../../src/machines/index.js';
import { refusalOf } from '../../src/machines/index.js';

export interface MachineUnderTest<C extends RefusalRecord, E extends EventObject, I = undefined> {
  machine: AnyStateMachine;
  fast: CompiledMachine<C, E, I>;
  input?: I;
}

interface Snap<C> {
  value: unknown;
  context: C;
}

const effectTypes = (actions: readonly { type: string }[]): string[] =>
  actions.map((a) => a.type).filter((t) => !t.startsWith('xstate.'));

export class Then<C extends RefusalRecord> {
  constructor(
    readonly before: Snap<C>,
    readonly after: Snap<C>,
    readonly effects: string[],
  ) {}

  state(expected: unknown): this {
    expect(this.after.value).toEqual(expected);
    return this;
  }

  context(expected: Partial<C>): this {
    expect(this.after.context).toMatchObject(expected);
    return this;
  }

  /** Accepted: no refusal recorded. */
  accepted(): this {
    expect(refusalOf(this.before, this.after)).toBeUndefined();
    return this;
  }

  /** Refused: the state and every field but the refusal record stay as they were. */
  refused(reason?: string | RegExp): this {
    const refusal = refusalOf(this.before, this.after);
    expect(refusal, 'expected a refusal').toBeDefined();
    expect(this.after.value).toEqual(this.before.value);
    const { refusals: _a, lastRefusal: _b, ...rest } = this.after.context;
    const { refusals: _c, lastRefusal: _d, ...restBefore } = this.before.context;
    expect(rest).toEqual(restBefore);
    if (reason !== undefined) expect(refusal!.reason).toMatch(reason);
    return this;
  }

  emits(...types: string[]): this {
    expect(this.effects).toEqual(types);
    return this;
  }
}

export function given<C extends RefusalRecord, E extends EventObject, I>(
  m: MachineUnderTest<C, E, I>,
  events: readonly E[] = [],
) {
  let snapshot = (initialTransition as unknown as (machine: AnyStateMachine, input?: unknown) => [Snap<C>])(
    m.machine,
    m.input,
  )[0];
  let fast = m.fast.initial(m.input);
  for (const e of events) {
    snapshot = transition(m.machine, snapshot as never, e)[0] as Snap<C>;
    fast = m.fast.next(fast, e);
  }
  expect({ value: fast.value, context: fast.context }).toEqual({ value: snapshot.value, context: snapshot.context });
  return {
    snapshot,
    when(event: E): Then<C> {
      const [after, actions] = transition(m.machine, snapshot as never, event) as unknown as [
        Snap<C>,
        { type: string }[],
      ];
      const [fastAfter, fastEffects] = m.fast.transition(fast, event);
      expect({ value: fastAfter.value, context: fastAfter.context }).toEqual({
        value: after.value,
        context: after.context,
      });
      expect(fastEffects.map((e) => e.type)).toEqual(effectTypes(actions));
      return new Then(snapshot, after, effectTypes(actions));
    },
  };
}
