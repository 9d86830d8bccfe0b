/**
 * bench:replay — time travel to the middle of a 1,000-STF run, `--check` of that run and an export/import round
 * trip, in wall seconds, beside the raw read+parse rate of the same log (the store's readAll with the same filter).
 * The run is made once (about a minute) and cached in .swf-bench/replay-1000.db.
 *
 * Targets (issue 7): time travel >= 50% of the raw rate over the events it folds; --check under 60 s.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { runWorkflow } from '../src/agents/workflow.js';
import { loadConfig } from '../src/config/index.js';
import { openEventStore } from '../src/eventStore/open.js';
import { exportRun, importBundle, parseBundle } from '../src/replay/bundle.js';
import { checkRun } from '../src/replay/check.js';
import { locateRun, readRunEvents } from '../src/replay/runEvents.js';
import { replayRun } from '../src/replay/timeTravel.js';

const STF = Number(process.env.SWF_BENCH_STF ?? 1000);
const dir = '.swf-bench';
const file = join(dir, `replay-${STF}.db`);
const secs = (t0: number): number => (performance.now() - t0) / 1000;

mkdirSync(dir, { recursive: true });
if (!existsSync(file)) {
  process.stderr.write(`making a ${STF}-STF run in ${file} (once)…\n`);
  const store = await openEventStore(`sqlite:${file}`);
  await runWorkflow({
    store,
    config: loadConfig({ set: [`fast_processing.stf_count=${STF}`], env: {} }),
    logger: pino({ level: 'silent' }),
    user: 'bench',
  });
  await store.close();
}

const store = await openEventStore(`sqlite:${file}`);
const head = (await store.headPosition()) ?? 0n;
const runNumber = 100010;
const info = await locateRun(store, runNumber);

// The run's events and the middle position.
let all = 0;
let last = 0n;
for await (const e of readRunEvents(store, info)) {
  all++;
  last = e.position;
}
const middle = (info.started?.position ?? 0n) + (last - (info.started?.position ?? 0n)) / 2n;

// Raw read+parse: the store's readAll over the same streams, up to the middle.
let t0 = performance.now();
let raw = 0;
for await (const _e of readRunEvents(store, info, { until: middle })) raw++;
const rawS = secs(t0);

t0 = performance.now();
const view = await replayRun(store, runNumber, { position: middle }, info);
const travelS = secs(t0);

t0 = performance.now();
const check = await checkRun(store, info);
const checkS = secs(t0);

t0 = performance.now();
let text = '';
await exportRun(store, runNumber, (c) => (text += c));
const exportS = secs(t0);
const target = join(tmpdir(), `swf-bench-import-${process.pid}.db`);
t0 = performance.now();
const bundle = parseBundle(text);
const imported = await openEventStore(`sqlite:${target}`);
const result = await importBundle(imported, bundle);
const importS = secs(t0);
const replayedImport = await replayRun(imported, runNumber, undefined);
await imported.close();
for (const f of [target, `${target}-wal`, `${target}-shm`]) rmSync(f, { force: true });
await store.close();

const rate = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en-US')} events/s`;
const rawRate = raw / rawS;
const travelRate = view.events / travelS;
const lines = [
  `bench:replay — ${STF}-STF run ${runNumber}, log of ${head} events, ${all} of them the run's`,
  `raw read+parse (readAll, same filter, to position ${middle}): ${raw} events in ${rawS.toFixed(2)} s = ${rate(raw, rawS)}`,
  `time travel to position ${middle}: ${view.events} events folded in ${travelS.toFixed(2)} s = ${rate(view.events, travelS)} ` +
    `(${Math.round((100 * travelRate) / rawRate)}% of raw; target >= 50%)  phase ${view.run_state.phase}, ${view.slices.completed}/${view.run_state.slices_created} slices completed`,
  `--check: ${check.ok ? 'deterministic' : 'DIVERGES'}, ${check.outputs_compared} outputs compared from ${check.inputs} inputs in ${checkS.toFixed(2)} s (target < 60 s)`,
  `export: ${bundle.events.length} events, ${(text.length / 1e6).toFixed(1)} MB in ${exportS.toFixed(2)} s; import (validate + one commit into a fresh SQLite store): ${result.events} events in ${importS.toFixed(2)} s; ` +
    `round trip replays identically: ${
      JSON.stringify({ ...replayedImport, position: 0, last_message: null }) ===
      JSON.stringify({
        ...(await (async () => {
          const s = await openEventStore(`sqlite:${file}`);
          try {
            return await replayRun(s, runNumber);
          } finally {
            await s.close();
          }
        })()),
        position: 0,
        last_message: null,
      })
    }`,
];
process.stdout.write(lines.join('\n') + '\n');
