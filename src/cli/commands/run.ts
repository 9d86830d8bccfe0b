import { hostname, userInfo } from 'node:os';
import { loadConfig } from '../../config/index.js';
import { IllegalStateError, isNotFoundError, ValidationError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { streams } from '../../messages/index.js';
import { type ResumePoint, resumePoint } from '../../agents/resume.js';
import { agentNames, type Progress, type RunSummary, runWorkflow } from '../../agents/workflow.js';
import { inspectorFor, takeInspectOption } from '../../replay/inspect.js';
import type { Command, Io } from '../context.js';
import { makeLogger, openStore, parse, STORE_OPTION, toJson } from '../context.js';

const usage =
  'swf run [--config NAME|PATH] [--testbed PATH] [--set section.key=value]... [--resume EXECUTION_ID|RUN] [--realtime] [--speed N] [--daq-only] [--json] [--inspect [URL]] [--store URL]';

const options = {
  ...STORE_OPTION,
  config: { type: 'string' },
  testbed: { type: 'string' },
  set: { type: 'string', multiple: true },
  realtime: { type: 'boolean' },
  speed: { type: 'string' },
  'daq-only': { type: 'boolean' },
  json: { type: 'boolean' },
  resume: { type: 'string' },
} as const;

/** The OS user, as the testbed's execution ids use it (`swf` when there is none). */
export function osUser(io: Io): string {
  let name = io.env.USER ?? io.env.LOGNAME;
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = undefined;
    }
  }
  const clean = (name ?? '').replace(/[^A-Za-z0-9_.-]/g, '');
  return clean === '' ? 'swf' : clean;
}

/**
 * Refuses to resume an execution whose DAQ process still runs on this host (its heartbeat names the pid): two
 * processes would drive one run, and their workers (named alike) would take each other's slices.
 */
async function refuseIfAlive(store: EventStore, resume: ResumePoint): Promise<void> {
  const daq = agentNames(resume.executed_by).daq;
  let beat: { pid?: unknown; hostname?: unknown } | undefined;
  try {
    for await (const e of store.readStream(streams.agent(daq), { direction: 'backwards', maxCount: 1000 })) {
      const d = e.data as { execution_id?: unknown; pid?: unknown; hostname?: unknown };
      if (e.type === 'agent_heartbeat' && d.execution_id === resume.execution_id) {
        beat = d;
        break;
      }
    }
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  if (typeof beat?.pid !== 'number' || beat.hostname !== hostname() || beat.pid === process.pid) return;
  try {
    process.kill(beat.pid, 0);
  } catch {
    return; // no such process: it died
  }
  throw new IllegalStateError(
    `execution ${resume.execution_id} is still running (process ${beat.pid} on this host); stop it with swf stop, or resume it once that process is gone`,
  );
}

export function parseSpeed(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new ValidationError(`--speed must be a positive number, got '${value}'`, { field: 'speed' });
  return n;
}

function progressLine(p: Progress): string {
  const r = p.run;
  const inFlight = r ? r.slices_queued + r.slices_processing : 0;
  return (
    `${p.execution_id ?? '…'} run ${p.run_number ?? '…'} [${p.phase}] ` +
    `STFs ${p.stf_files}  samples ${r?.stf_samples_received ?? 0}  ` +
    `slices ${r?.slices_completed ?? 0} done / ${r?.slices_failed ?? 0} failed / ${inFlight} in flight of ${r?.slices_created ?? 0}`
  );
}

/** `panda-worker-x-01` … `panda-worker-x-30` as one line. */
function collapseWorkers(agents: string[]): string[] {
  const workers = agents.filter((a) => /^panda-worker-/.test(a));
  if (workers.length <= 2) return agents;
  return [
    ...agents.filter((a) => !workers.includes(a)),
    `${workers[0]} … ${workers[workers.length - 1]} (${workers.length} PanDA workers)`,
  ];
}

export function printSummary(s: RunSummary, io: Io): void {
  const lines = [
    `Run ${s.run_number} Summary (execution ${s.execution_id}, namespace ${s.namespace}):`,
    `├── Status: ${s.status}, final phase: ${s.phase}`,
    `├── Duration: ${s.duration_s.toFixed(1)} s of run time (${s.wall_s.toFixed(2)} s wall)`,
    `├── STF files: ${s.stf_files} → TF samples: ${s.tf_samples}`,
    `├── Slices: ${s.slices.created} created, ${s.slices.completed} completed, ${s.slices.failed} failed for good, ${s.slices.retried} retries`,
    `├── Messages:`,
    ...Object.entries(s.messages)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([t, n], i, all) => `│   ${i === all.length - 1 ? '└──' : '├──'} ${t} × ${n}`),
    `└── Agents involved:`,
    ...collapseWorkers(s.agents).map((a, i, all) => `    ${i === all.length - 1 ? '└──' : '├──'} ${a}`),
    `Store: ${s.store} (${s.events} events)`,
  ];
  io.stdout.write(lines.join('\n') + '\n');
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run a complete fast processing workflow (DAQ, agents, workers) and print its summary',
  usage,
  options,
  async run(argv, io) {
    const taken = takeInspectOption(argv);
    const { values, positionals } = parse(taken.argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          'Runs the DAQ simulator, the data, FastMon and fast processing agents and the PanDA worker pool on one store,\n' +
          'and returns when the run is finished (its phase is completed and every slice is final).\n\n' +
          '  --config NAME|PATH   workflow configuration (default fast_processing_default; ./workflows/ first, then the package)\n' +
          '  --testbed PATH       testbed file (default $SWF_TESTBED_CONFIG, else workflows/testbed.toml)\n' +
          '  --set s.k=v          override any configuration key, TOML value syntax (repeatable)\n' +
          '  --realtime           pace the configured delays in real time (default: virtual time, as fast as possible)\n' +
          '  --speed N            in realtime, divide every delay by N\n' +
          '  --daq-only           only drive the DAQ; agents run elsewhere (swf agent ...), realtime\n' +
          '  --resume ID|RUN      carry on an unfinished execution whose process died (kill -9, power cut) to its end,\n' +
          '                       with its recorded configuration: the DAQ sends what it had not sent yet, the agents\n' +
          '                       go on from their checkpoints, the workers take the queued slices\n' +
          '  --json               print one JSON object instead of the summary\n' +
          "  --inspect [URL]      send the run machine's transitions to a Stately inspector (WebSocket, default\n" +
          '                       ws://localhost:8080; without a URL, says how to open one)\n\n' +
          'Progress goes to stderr. Ctrl-C or `swf stop EXECUTION_ID` ends the run early and cleanly.\n' +
          'Exit code 0 when the run finished (also with failed slices), non-zero when it could not finish.\n',
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    if (taken.inspect && values['daq-only'])
      throw new ValidationError(
        '--inspect watches the fast processing agent, which --daq-only leaves to another process',
      );
    if (values.resume !== undefined) {
      for (const flag of ['config', 'testbed', 'set'] as const)
        if (values[flag] !== undefined)
          throw new ValidationError(
            `--resume carries on the execution with the configuration it recorded; --${flag} cannot change it`,
          );
    }
    const speed = parseSpeed(values.speed);
    const realtime = values.realtime === true || speed !== undefined || values['daq-only'] === true;
    const config = loadConfig({
      ...(values.config !== undefined
        ? /[/\\]|\.toml$/.test(values.config)
          ? { path: values.config }
          : { name: values.config }
        : {}),
      ...(values.testbed !== undefined ? { testbed: values.testbed } : {}),
      set: values.set ?? [],
      env: io.env,
      cwd: io.cwd,
    });
    const inspector = await inspectorFor(taken.inspect, io.stderr);
    const store = await openStore(values, io, values['daq-only'] ? 'shared' : 'create').catch(async (e: unknown) => {
      await inspector?.stop();
      throw e;
    });
    const resume =
      values.resume !== undefined
        ? await resumePoint(store, values.resume)
            .then(async (r) => {
              await refuseIfAlive(store, r);
              return r;
            })
            .catch(async (e: unknown) => {
              await inspector?.stop();
              await store.close();
              throw e;
            })
        : undefined;
    const logger = makeLogger(io);
    const tty = (io.stderr as NodeJS.WriteStream).isTTY === true;
    let lastPlain = 0;
    const onProgress = (p: Progress): void => {
      const line = progressLine(p);
      if (tty) io.stderr.write(`\r\x1b[2K${line}${p.phase === 'done' ? '\n' : ''}`);
      else if (Date.now() - lastPlain >= 1000 || p.phase === 'done') {
        lastPlain = Date.now();
        io.stderr.write(`${line}\n`);
      }
    };
    let interrupt: () => void = () => {};
    const stopRequested = new Promise<void>((resolve) => (interrupt = resolve));
    const onSignal = (): void => {
      io.stderr.write('\nstopping: sending end_run and closing the execution…\n');
      interrupt();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const summary = await runWorkflow({
        store,
        config,
        logger,
        user: osUser(io),
        mode: realtime ? 'realtime' : 'virtual',
        ...(speed !== undefined ? { speed } : {}),
        daqOnly: values['daq-only'] === true,
        stopRequested,
        onProgress,
        ...(resume ? { resume } : {}),
        ...(inspector ? { inspect: { onRunTransition: inspector.onRunTransition } } : {}),
      });
      if (values.json) {
        const { status: _status, events: _events, ...rest } = summary;
        io.stdout.write(toJson(rest) + '\n');
      } else printSummary(summary, io);
      return summary.status === 'failed' ? 1 : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await inspector?.stop();
      await store.close();
    }
  },
};
