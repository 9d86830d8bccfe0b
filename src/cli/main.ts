#!/usr/bin/env -S node --max-semi-space-size=32 --heap-growing-percent=50
/** The `swf` command: the composition root. Reads the environment, picks adapters, maps errors to exit codes. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command as Parser, CommanderError } from 'commander';
import { describeError, ValidationError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { type Command, commanderMessage, exitCodeOf, type Io } from './context.js';
import { type LogFormat, parseLogFormat } from './logFormat.js';
import { completionCommand } from './commands/completion.js';
import { eventsCommand } from './commands/events.js';
import { machinesCommand } from './commands/machines.js';
import { runCommand } from './commands/run.js';
import { agentCommand } from './commands/agent.js';
import { stopCommand } from './commands/stop.js';
import { replayCommand } from './commands/replay.js';
import { exportCommand } from './commands/export.js';
import { importCommand } from './commands/import.js';
import { monitorCommand } from './commands/monitor.js';
import { mcpCommand } from './commands/mcp.js';
import { runsCommand } from './commands/runs.js';
import { projectionsCommand } from './commands/projections.js';
import { gatewayCommand } from './commands/gateway.js';
import { conformanceCommand } from './commands/conformance.js';

export const commands: Command[] = [
  runCommand,
  agentCommand,
  stopCommand,
  eventsCommand,
  machinesCommand,
  replayCommand,
  exportCommand,
  importCommand,
  runsCommand,
  monitorCommand,
  mcpCommand,
  projectionsCommand,
  gatewayCommand,
  conformanceCommand,
  completionCommand(() => commands),
];

/** The package's version, from its package.json (two levels up from src/cli, three from dist/src/cli). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'swf-es' && typeof pkg.version === 'string') return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

const FOOTER =
  '\nEvery command takes --store URL (default: $SWF_STORE, else sqlite:./swf-data/swf.db), before or after its\n' +
  'name (swf machines ignores it: it reads no store), and --log-format json|pretty (default: pretty on a terminal,\n' +
  'JSON otherwise; or $SWF_LOG_FORMAT). Stores: memory:, sqlite:<path>, postgres://…, esdb://host:2113?tls=false\n' +
  'swf <command> --help (or swf help <command>) shows its options; swf completion bash|zsh prints shell completion.\n';

/**
 * `--log-format json|pretty` anywhere before `--` (before or after the command's name): taken out here, since the
 * logger is made from `io` before a command's own options are parsed.
 */
export function takeLogFormat(argv: readonly string[]): { argv: string[]; logFormat?: LogFormat } {
  const out: string[] = [];
  let logFormat: LogFormat | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a !== '--log-format' && !a.startsWith('--log-format=')) {
      out.push(a);
      continue;
    }
    if (logFormat !== undefined) throw new ValidationError('--log-format was given more than once; it takes one value');
    const value = a === '--log-format' ? argv[++i] : a.slice('--log-format='.length);
    if (value === undefined) throw new ValidationError('--log-format needs a value: json or pretty');
    logFormat = parseLogFormat(value, '--log-format');
  }
  return logFormat === undefined ? { argv: out } : { argv: out, logFormat };
}

async function runCommand_(command: Command, argv: string[], io: Io): Promise<number> {
  try {
    return await command.run(argv, io);
  } catch (e: unknown) {
    io.stderr.write(`swf ${command.name}: ${describeError(e)}\n`);
    if (io.env.SWF_DEBUG && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return exitCodeOf(e);
  }
}

/**
 * The top level, parsed by commander: the command's name (with "did you mean" for a mistyped one), `-v/--version`,
 * `-h/--help`, `--store` before the name. The command parses the rest itself (context.ts `parse`, also commander).
 */
function program(io: Io, done: (code: number) => void): Parser {
  const p = new Parser('swf')
    .description('the event-sourced fast processing workflow of the ePIC streaming workflow testbed')
    .usage('<command> [options]')
    .version(`swf-es ${packageVersion()}`, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'list the commands')
    .helpCommand(false)
    .enablePositionalOptions()
    .option('--store <url>', 'the store, for the command that follows')
    .addHelpText('after', FOOTER)
    .configureHelp({ subcommandTerm: (c) => (c.name() === 'help' ? 'help [command]' : c.name()) })
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: () => {}, outputError: () => {} });
  for (const c of commands) {
    p.command(c.name)
      .description(c.summary)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(async (args: string[]) => {
        const store = p.opts<{ store?: string }>().store;
        done(await runCommand_(c, store === undefined ? args : [...args, '--store', store], io));
      });
  }
  p.command('help')
    .description("a command's options and what it does (swf help run)")
    .argument('[command]')
    .action(async (name: string | undefined) => {
      if (name === undefined) {
        p.outputHelp();
        done(0);
        return;
      }
      const c = commands.find((x) => x.name === name);
      if (c) done(await runCommand_(c, ['--help'], io));
      else {
        io.stderr.write(`swf help: unknown command '${name}'${didYouMean(name, commandNames())}\n`);
        done(2);
      }
    });
  return p;
}

const commandNames = (): string[] => [...commands.map((c) => c.name), 'help'];

export async function main(argv: string[], io: Io): Promise<number> {
  let taken: ReturnType<typeof takeLogFormat>;
  try {
    taken = takeLogFormat(argv);
  } catch (e: unknown) {
    io.stderr.write(`swf: ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
  const ioWith: Io = taken.logFormat ? { ...io, logFormat: taken.logFormat } : io;
  let code: number | undefined;
  const p = program(ioWith, (c) => (code = c));
  if (taken.argv.length === 0) {
    p.outputHelp();
    return 2;
  }
  try {
    await p.parseAsync(taken.argv, { from: 'user' });
  } catch (e: unknown) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.version' || e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return 0;
    const hint = e.code === 'commander.unknownCommand' ? ' (swf --help lists the commands)' : '';
    io.stderr.write(`swf: ${commanderMessage(e)}${hint}\n`);
    return 2;
  }
  if (code === undefined) {
    // Only global options (`swf --store x`): no command named.
    io.stderr.write('swf: name a command (swf --help lists them)\n');
    return 2;
  }
  return code;
}

const isEntry =
  process.argv[1] !== undefined &&
  import.meta.url ===
    (await import('node:url')).pathToFileURL((await import('node:fs')).realpathSync(process.argv[1])).href;
if (isEntry) {
  const name = process.argv[2] ?? '';
  // A reader that closes stdout early (`swf events read | head -1`) has all it wants: stop quietly, no EPIPE trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw e;
  });
  // A failure that surfaces after the command has reported (an agent still committing when the disk filled up)
  // is one more line with its exit code (5 for a store that cannot be written), never a stack trace.
  let reported = false;
  process.on('unhandledRejection', (e: unknown) => {
    // After the command has reported its own failure, a late one is its echo: the exit code, not a second line.
    if (!reported) process.stderr.write(`swf ${name}: ${describeError(e)}\n`);
    if (process.env.SWF_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    const code = exitCodeOf(e);
    if (typeof process.exitCode !== 'number' || process.exitCode === 0 || process.exitCode === 1)
      process.exitCode = code;
  });
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  });
  reported = code !== 0;
  // A late failure (above) may have set a more precise code than a generic 1.
  if (typeof process.exitCode !== 'number' || process.exitCode === 0 || code !== 1) process.exitCode = code;
}
