import { hostname, userInfo } from 'node:os';
import { type Config, loadConfig } from '../../config/index.js';
import { IllegalStateError, isNotFoundError, ValidationError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { streams } from '../../messages/index.js';
import { type ResumePoint, resumePoint } from '../../agents/resume.js';
import { heartbeatSecondsFrom } from '../../agents/health.js';
import {
  agentNames,
  DEFAULT_AGENT_WAIT_SECONDS,
  type Progress,
  type RunSummary,
  runWorkflow,
} from '../../agents/workflow.js';
import { ProgressDisplay } from '../progress.js';
import { inspectorFor, takeInspectOption } from '../../replay/inspect.js';
import type { Command, Io } from '../context.js';
import { makeLogger, openStore, parse, STORE_OPTION, toJson } from '../context.js';

const usage =
  'swf run [--config NAME|PATH] [--testbed PATH] [--set section.key=value]... [--resume EXECUTION_ID|RUN] [--realtime] [--speed N] [--daq-only [--wait-for-agents SECONDS]] [--json] [--inspect [URL]] [--store URL]';

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
  'wait-for-agents': { type: 'string' },
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

/** `--wait-for-agents SECONDS`: only with --daq-only; a positive number. */
function parseWait(value: string | undefined, daqOnly: boolean): number {
  if (value === undefined) return DEFAULT_AGENT_WAIT_SECONDS;
  if (!daqOnly)
    throw new ValidationError('--wait-for-agents goes with --daq-only: swf run runs its agents itself', {
      field: 'wait-for-agents',
    });
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400)
    throw new ValidationError(
      `--wait-for-agents must be a number of seconds above 0 and at most 86400, got '${value}'`,
      {
        field: 'wait-for-agents',
      },
    );
  return n;
}

/** Whether the configuration asks for real time: `[workflow] realtime`, else `[simulation] realtime`. */
export function configuredRealtime(config: Config): boolean {
  return (config.workflow.realtime ?? config.simulation?.realtime) === true;
}

export function parseSpeed(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new ValidationError(`--speed must be a positive number, got '${value}'`, { field: 'speed' });
  return n;
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

/** How the run ended early, when it did: a signal, or `--daq-only` giving up on a missing agent. */
export interface Interruption {
  signal?: 'SIGINT' | 'SIGTERM';
}

export function printSummary(s: RunSummary, io: Io, interruption: Interruption = {}): void {
  const status = interruption.signal
    ? `interrupted by ${interruption.signal} (execution ${s.status}); the counts are what the log holds`
    : s.gave_up
      ? `gave up: no live agent for ${s.gave_up.wait_seconds} s (${s.gave_up.missing.join(', ')}); execution ${s.status}`
      : s.status;
  const lines = [
    `Run ${s.run_number} Summary (execution ${s.execution_id}, namespace ${s.namespace}):`,
    `├── Status: ${status}, final phase: ${s.phase}`,
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
          '  --daq-only           only drive the DAQ; agents run elsewhere (swf agent ...), realtime. Warns while a\n' +
          '                       kind of agent has no live agent (by their heartbeats, on the wall clock)\n' +
          `  --wait-for-agents S  with --daq-only, give up (end_run, execution terminated, exit 1) once a kind of agent\n` +
          `                       has been missing for S seconds (default ${DEFAULT_AGENT_WAIT_SECONDS})\n` +
          '  --resume ID|RUN      carry on an unfinished execution whose process died (kill -9, power cut) to its end,\n' +
          '                       with its recorded configuration: the DAQ sends what it had not sent yet, the agents\n' +
          '                       go on from their checkpoints, the workers take the queued slices\n' +
          '  --json               print one JSON object instead of the summary\n' +
          "  --inspect [URL]      send the run machine's transitions to a Stately inspector (WebSocket, default\n" +
          '                       ws://localhost:8080; without a URL, says how to open one)\n\n' +
          'Progress goes to stderr: a bar with rate and ETA on a terminal, else a line whenever the counts change.\n' +
          'Ctrl-C (or SIGTERM) or `swf stop EXECUTION_ID` ends the run early and cleanly: end_run, the execution\n' +
          'terminated, the summary of what the log holds.\n' +
          'Exit code 0 when the run finished (also with failed slices) or `swf stop` ended it, 130 after Ctrl-C (SIGINT),\n' +
          '143 after SIGTERM, 1 when it could not finish or --daq-only gave up waiting for an agent.\n' +
          '`[workflow] realtime = true` (or `[simulation] realtime`) in the configuration or testbed file runs in realtime\n' +
          'like --realtime. Agents heartbeat every $SWF_HEARTBEAT_SECONDS wall seconds (default 30).\n',
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
    const agentWait = parseWait(values['wait-for-agents'], values['daq-only'] === true);
    const heartbeatSeconds = heartbeatSecondsFrom(io.env);
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
    // The testbed's own key (testbed.toml `[workflow] realtime`, `[simulation] realtime`) paces the run too; a
    // resumed run keeps the one it recorded.
    const recorded = values.resume === undefined ? config.config : undefined;
    const realtime =
      values.realtime === true ||
      speed !== undefined ||
      values['daq-only'] === true ||
      (recorded !== undefined && configuredRealtime(recorded));
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
    const display = new ProgressDisplay(io.stderr, tty);
    const onProgress = (p: Progress): void => display.report(p);
    let interrupt: () => void = () => {};
    const stopRequested = new Promise<void>((resolve) => (interrupt = resolve));
    const interruption: Interruption = {};
    const onSignal = (signal: NodeJS.Signals): void => {
      if (interruption.signal) return;
      interruption.signal = signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
      io.stderr.write(`\n${signal}: stopping: sending end_run and closing the execution…\n`);
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
        heartbeatSeconds,
        agentWaitSeconds: agentWait,
        onAgentsMissing: (missing, wait) => {
          io.stderr.write(
            missing.length > 0
              ? `${tty ? '\n' : ''}warning: no live agent in namespace ${config.config.testbed.namespace} for: ${missing.join(', ')} ` +
                  `(no heartbeat seen); start it against this store, or the run gives up after ${wait} s (--wait-for-agents)\n`
              : `${tty ? '\n' : ''}every kind of agent is running again\n`,
          );
        },
        ...(resume ? { resume } : {}),
        ...(inspector ? { inspect: { onRunTransition: inspector.onRunTransition } } : {}),
      });
      if (values.json) {
        const { status: _status, events: _events, ...rest } = summary;
        io.stdout.write(
          toJson({ ...rest, ...(interruption.signal ? { interrupted: interruption.signal } : {}) }) + '\n',
        );
      } else printSummary(summary, io, interruption);
      if (interruption.signal) return interruption.signal === 'SIGTERM' ? 143 : 130;
      if (summary.gave_up) {
        io.stderr.write(
          `swf run: gave up after ${summary.gave_up.wait_seconds} s without a live agent for: ${summary.gave_up.missing.join(', ')}\n`,
        );
        return 1;
      }
      return summary.status === 'failed' ? 1 : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await inspector?.stop();
      await store.close();
    }
  },
};
