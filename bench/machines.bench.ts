/**
 * `npm run bench:machines`: slice lifecycle transitions per second, three ways, in one run:
 * XState's pure `transition()`, the fast path derived from the same machine, and a hand-written `switch` reducer.
 * Each folds the same events (slices taken, some failing and retried, some leases expiring); each is warmed up
 * first, and all three must end in the same states. Options: `--slices N` (default 100000), `--json`.
 */
import { performance } from 'node:perf_hooks';
import { initialTransition, transition } from 'xstate';
import { fastSlice, sliceMachine, type SliceContext, type SliceEvent } from '../src/machines/index.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const SLICES = Number(flag('--slices') ?? 100_000);
const JSON_OUT = args.includes('--json');
const MAX_RETRIES = 3;

/** Per slice: its events. Every 7th slice fails its first attempt, every 31st expires, every 97th fails for good. */
function workload(slices: number): SliceEvent[][] {
  const out: SliceEvent[][] = [];
  for (let i = 0; i < slices; i++) {
    const events: SliceEvent[] = [];
    const failures = i % 97 === 0 ? MAX_RETRIES + 1 : i % 7 === 0 ? 1 : 0;
    let attempt = 1;
    for (; attempt <= failures; attempt++) {
      events.push({ type: 'START', attempt, worker: `worker-${i % 30}`, lease_deadline: '2026-01-01T00:01:30.000Z' });
      events.push(i % 31 === 0 ? { type: 'LEASE_EXPIRED', attempt } : { type: 'FAIL', attempt, reason: 'error' });
    }
    if (failures <= MAX_RETRIES) {
      events.push({ type: 'START', attempt, worker: `worker-${i % 30}`, lease_deadline: '2026-01-01T00:01:30.000Z' });
      events.push({ type: 'SUCCEED', attempt });
    }
    out.push(events);
  }
  return out;
}

// ---- the plain reducer: the same rules, by hand ---------------------------------------------------------

interface Plain {
  status: 'queued' | 'processing' | 'completed' | 'failed';
  context: SliceContext;
}

function refused(s: Plain, e: SliceEvent, reason: string): Plain {
  return {
    status: s.status,
    context: {
      ...s.context,
      refusals: s.context.refusals + 1,
      lastRefusal: { event: e.type, state: s.status, reason },
    },
  };
}

function reduce(s: Plain, e: SliceEvent): Plain {
  const c = s.context;
  switch (s.status) {
    case 'queued':
      if (e.type === 'START' && e.attempt === c.attempt) {
        return { status: 'processing', context: { ...c, worker: e.worker, lease_deadline: e.lease_deadline ?? null } };
      }
      return refused(s, e, 'not now');
    case 'processing':
      switch (e.type) {
        case 'SUCCEED':
          if (e.attempt !== c.attempt) return refused(s, e, 'stale');
          return { status: 'completed', context: { ...c, worker: null, lease_deadline: null } };
        case 'FAIL':
        case 'LEASE_EXPIRED': {
          if (e.attempt !== c.attempt) return refused(s, e, 'stale');
          const last_error = e.type === 'LEASE_EXPIRED' ? 'lease expired' : (e.reason ?? 'failed');
          if (c.retries < c.max_retries) {
            return {
              status: 'queued',
              context: {
                ...c,
                attempt: c.attempt + 1,
                retries: c.retries + 1,
                worker: null,
                lease_deadline: null,
                last_error,
              },
            };
          }
          return { status: 'failed', context: { ...c, worker: null, lease_deadline: null, last_error } };
        }
        case 'START':
          return refused(s, e, 'held');
        default: {
          const never: never = e;
          return never;
        }
      }
    case 'completed':
    case 'failed':
      return refused(s, e, 'final');
    default: {
      const never: never = s.status;
      return never;
    }
  }
}

// ---- timing ---------------------------------------------------------------------------------------------

interface Result {
  name: string;
  transitions: number;
  seconds: number;
  perSecond: number;
  finals: string;
}

/** Runs `fold` over the workload `rounds` times after `warmup` rounds; reports the best round. */
function measure(name: string, work: SliceEvent[][], fold: (events: SliceEvent[]) => string, rounds = 3): Result {
  const transitions = work.reduce((n, events) => n + events.length, 0);
  const finalsOf = (): string => {
    const counts = new Map<string, number>();
    for (const events of work) {
      const s = fold(events);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    return [...counts]
      .sort()
      .map(([k, v]) => `${k.replaceAll('"', '')}=${v}`)
      .join(' ');
  };
  const finals = finalsOf(); // warm-up, and the result to compare
  finalsOf();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (const events of work) fold(events);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { name, transitions, seconds: best, perSecond: transitions / best, finals };
}

const work = workload(SLICES);
const [xInitial] = initialTransition(sliceMachine, { max_retries: MAX_RETRIES });
const fInitial = fastSlice.initial({ max_retries: MAX_RETRIES });
const pInitial: Plain = { status: 'queued', context: fInitial.context };

// XState's transition() is ~100x slower: fold a tenth of the slices so the run stays short.
const xWork = work.slice(0, Math.max(1, Math.floor(SLICES / 10)));

const results = [
  measure('xstate transition()', xWork, (events) => {
    let s = xInitial;
    for (const e of events) s = transition(sliceMachine, s, e)[0];
    return JSON.stringify(s.value);
  }),
  measure('fast path', work, (events) => {
    let s = fInitial;
    for (const e of events) s = fastSlice.next(s, e);
    return JSON.stringify(s.value);
  }),
  measure('switch reducer', work, (events) => {
    let s = pInitial;
    for (const e of events) s = reduce(s, e);
    return JSON.stringify(s.status);
  }),
];

// The same rules must give the same outcome (compared on the slices all three folded).
const check = [
  measure('fast path (check)', xWork, (events) => JSON.stringify(fastSlice.fold(events, fInitial).value), 1).finals,
  measure('switch (check)', xWork, (events) => JSON.stringify(events.reduce(reduce, pInitial).status), 1).finals,
];
if (check.some((f) => f !== results[0]!.finals)) {
  console.error(`outcomes differ: xstate ${results[0]!.finals}; fast ${check[0]}; switch ${check[1]}`);
  process.exit(1);
}

const fast = results[1]!;
if (JSON_OUT) {
  console.log(
    JSON.stringify({
      node: process.version,
      slices: SLICES,
      results: results.map(({ name, transitions, seconds, perSecond }) => ({ name, transitions, seconds, perSecond })),
      target: 1_000_000,
      met: fast.perSecond >= 1_000_000,
    }),
  );
} else {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log(`slice lifecycle transitions, node ${process.version}, best of 3 rounds after warm-up`);
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(22)} ${fmt(r.perSecond).padStart(12)} /s   (${fmt(r.transitions)} transitions in ${r.seconds.toFixed(3)} s)`,
    );
  }
  console.log(`  fast path / xstate: ${(fast.perSecond / results[0]!.perSecond).toFixed(0)}x`);
  console.log(`  target ≥ 1,000,000 /s on one core: ${fast.perSecond >= 1_000_000 ? 'met' : 'NOT met'}`);
  console.log(`  outcomes agree: ${results[0]!.finals}`);
}
