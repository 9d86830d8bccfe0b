/**
 * What the fast path compiles and what it refuses: it reads the machine's definition through XState's own state-node
 * types, and refuses every construct it does not reproduce (so it never silently diverges from XState).
 */
import { describe, expect, it } from 'vitest';
import { assign, createMachine, type AnyStateMachine } from 'xstate';
import { ValidationError } from '../../src/errors.js';
import { compileMachine } from '../../src/machines/fastPath.js';
import type { MachineLogic } from '../../src/machines/logic.js';

interface Ctx {
  n: number;
}
type Ev = { type: 'GO' } | { type: 'BACK' } | { type: 'BUMP'; by: number };

const logic: MachineLogic<Ctx, Ev> = {
  updates: {
    bump: (c, e, p: { extra: number } | undefined) => ({ n: c.n + (e.type === 'BUMP' ? e.by : 1) + (p?.extra ?? 0) }),
  },
  guards: { small: (c, _e, p: { max: number }) => c.n < p.max },
  effects: ['notify'],
};

const machine = (config: object): AnyStateMachine => createMachine(config as Parameters<typeof createMachine>[0]);
const compile = (config: object) => compileMachine<Ctx, Ev>(machine(config), logic);

describe('compileMachine', () => {
  const ok = {
    id: 'm',
    context: { n: 0 },
    initial: 'outer',
    on: { BUMP: { actions: [{ type: 'bump', params: { extra: 10 } }, 'notify'] } },
    states: {
      outer: {
        initial: 'a',
        on: { BACK: { target: '#m.done' } },
        states: {
          a: { on: { GO: [{ guard: { type: 'small', params: { max: 2 } }, target: 'b', actions: 'bump' }] } },
          b: { on: { BACK: { target: 'a' } } },
        },
      },
      done: {},
    },
  };

  it('reads nested states, guards with params, ancestor transitions, updates and effects off the definition', () => {
    const m = compile(ok);
    expect(m.id).toBe('m');
    expect(m.states).toEqual(['outer.a', 'outer.b', 'done']);
    const s0 = m.initial();
    expect(s0).toEqual({ value: { outer: 'a' }, context: { n: 0 } });
    const [s1, fx1] = m.transition(s0, { type: 'BUMP', by: 1 });
    expect(s1).toEqual({ value: { outer: 'a' }, context: { n: 11 } });
    expect(fx1).toEqual([{ type: 'notify', params: undefined }]);
    expect(m.next(s0, { type: 'GO' })).toEqual({ value: { outer: 'b' }, context: { n: 1 } });
    expect(m.next(s1, { type: 'GO' })).toBe(s1); // guard small (n < 2) fails: nothing handles it
    expect(m.keyOf(m.next(m.next(s0, { type: 'GO' }), { type: 'BACK' }).value)).toBe('outer.a'); // own first
    expect(m.fold([{ type: 'BACK' }]).value).toBe('done'); // the ancestor's
  });

  const refused: [string, object, RegExp][] = [
    [
      'a parallel state',
      { ...ok, states: { ...ok.states, done: { type: 'parallel', states: { x: {} } } } },
      /a parallel state/,
    ],
    ['entry actions', { ...ok, states: { ...ok.states, done: { entry: 'notify' } } }, /entry\/exit actions/],
    ['always', { ...ok, states: { ...ok.states, done: { always: { target: 'outer' } } } }, /'always' transitions/],
    // XState compiles `after` into entry/exit actions (schedule, cancel), which are refused first.
    ['after', { ...ok, states: { ...ok.states, done: { after: { 10: { target: 'outer' } } } } }, /entry\/exit actions/],
    ['a wildcard event', { ...ok, on: { '*': { actions: 'bump' } } }, /the wildcard event '\*'/],
    ['an inline action', { ...ok, on: { GO: { actions: assign({ n: 1 }) } } }, /an inline \(unnamed\) action or guard/],
    ['an inline guard', { ...ok, on: { GO: { guard: () => true, actions: 'bump' } } }, /an inline \(unnamed\) action/],
    [
      'dynamic params',
      { ...ok, on: { GO: { actions: { type: 'bump', params: () => ({ extra: 1 }) } } } },
      /dynamic params of 'bump'/,
    ],
    ['an unknown guard', { ...ok, on: { GO: { guard: 'big', actions: 'bump' } } }, /the guard 'big'/],
    ['an unknown action', { ...ok, on: { GO: { actions: 'log' } } }, /the action 'log' \(neither/],
  ];
  it.each(refused)('refuses %s, naming the machine and the place', (_what, config, message) => {
    expect(() => compile(config)).toThrow(ValidationError);
    expect(() => compile(config)).toThrow(message);
    expect(() => compile(config)).toThrow(/machine 'm'/);
  });
});
