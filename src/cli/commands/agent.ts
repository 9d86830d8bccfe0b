import { hostname } from 'node:os';
import { loadConfig } from '../../config/index.js';
import { ValidationError } from '../../errors.js';
import { RealClock } from '../../agents/clock.js';
import { dataAgent } from '../../agents/dataAgent.js';
import { fastMonAgent } from '../../agents/fastMonAgent.js';
import { fastProcessingAgent } from '../../agents/fastProcessingAgent.js';
import { startWorkerPool } from '../../agents/pandaWorker.js';
import { type Agent, startAgent } from '../../agents/runtime.js';
import { agentNames } from '../../agents/workflow.js';
import { heartbeatSecondsFrom } from '../../agents/health.js';
import { joinPoint } from '../../agents/resume.js';
import type { Command } from '../context.js';
import { makeLogger, openStore, parse, positiveInt, STORE_OPTION } from '../context.js';
import { osUser, parseSpeed } from './run.js';

const usage =
  'swf agent data|fastmon|fast-processing|worker [--testbed PATH] [--workers N] [--name PREFIX] [--speed N] [--store URL]';

const options = {
  ...STORE_OPTION,
  testbed: { type: 'string' },
  workers: { type: 'string' },
  name: { type: 'string' },
  speed: { type: 'string' },
} as const;
const KINDS = ['data', 'fastmon', 'fast-processing', 'worker'] as const;
type Kind = (typeof KINDS)[number];

export const agentCommand: Command = {
  name: 'agent',
  summary: 'run one agent (data, fastmon, fast-processing) or a pool of PanDA workers in this process, in realtime',
  usage,
  options,
  subcommands: KINDS,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          'Runs one agent against the store until Ctrl-C (or SIGTERM), in realtime divided by --speed. It resumes from its\n' +
          'checkpoint; a fresh agent takes part in every unfinished run of its namespace (it catches up from the log,\n' +
          'nothing is done twice) and in the runs that begin after it. Start the agents before or after\n' +
          '`swf run --daq-only --speed N`, which drives a run through them. The namespace comes from the testbed file.\n' +
          'It sends a heartbeat every $SWF_HEARTBEAT_SECONDS wall seconds (default 30) and one saying EXITED when it stops.\n\n' +
          "  --workers N      worker pool size (default: each run's target_worker_count)\n" +
          '  --name PREFIX    worker name prefix (default panda-worker-<user>-p<pid>; names are PREFIX-01, -02, ...)\n',
      );
      return 0;
    }
    const kind = positionals[0] as Kind | undefined;
    if (!kind || !KINDS.includes(kind) || positionals.length > 1) {
      throw new ValidationError(`name one agent: ${KINDS.join(', ')}; usage: ${usage}`);
    }
    const workers = positiveInt(values.workers, '--workers');
    if (workers === 0) throw new ValidationError('--workers must be at least 1', { field: 'workers' });
    const speed = parseSpeed(values.speed) ?? 1;
    const heartbeatSeconds = heartbeatSecondsFrom(io.env);
    const config = loadConfig({
      ...(values.testbed !== undefined ? { testbed: values.testbed } : {}),
      env: io.env,
      cwd: io.cwd,
    });
    const namespace = config.config.testbed.namespace;
    const user = osUser(io);
    const names = agentNames(user);
    const store = await openStore(values, io, 'shared');
    const logger = makeLogger(io);
    const clock = new RealClock(speed);
    const base = { store, clock, logger, pid: process.pid, hostname: hostname(), heartbeatSeconds };

    let running: { done: Promise<void>; stop(): Promise<void> };
    if (kind === 'worker') {
      // No start position: the pool reads the history first and joins every run announced and not finished.
      running = startWorkerPool({
        ...base,
        namespace,
        namePrefix: values.name ?? `${names.workerPrefix}-p${process.pid}`,
        ...(workers !== undefined ? { workers } : {}),
      });
    } else {
      const make: Record<Exclude<Kind, 'worker'>, () => Agent> = {
        data: () => dataAgent({ name: names.data, type: 'DATA', namespace }),
        fastmon: () => fastMonAgent({ name: names.fastmon, type: 'fastmon', namespace }),
        'fast-processing': () =>
          fastProcessingAgent({ name: names.fastProcessing, type: 'Fast_Processing', namespace }),
      };
      // A fresh agent (no checkpoint) joins the runs in progress: it starts at the oldest unfinished execution.
      running = startAgent(make[kind](), { ...base, startFrom: await joinPoint(store, namespace) });
    }
    io.stderr.write(
      `swf agent ${kind}: running in namespace ${namespace} on ${store.url} (speed ${speed}); Ctrl-C stops it\n`,
    );
    const stop = (): void => {
      void running.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await running.done;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      clock.shutdown();
      await store.close();
    }
    io.stderr.write(`swf agent ${kind}: stopped\n`);
    return 0;
  },
};
