#!/usr/bin/env -S node --max-semi-space-size=32 --heap-growing-percent=50
/** The `swf` command: the composition root. Reads the environment, picks adapters, maps errors to exit codes. */
import { describeError } from '../errors.js';
import { type Command, exitCodeOf, type Io } from './context.js';
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
];

function help(io: Io): void {
  const width = Math.max(...commands.map((c) => c.name.length));
  io.stdout.write(
    'swf — the event-sourced fast processing workflow of the ePIC streaming workflow testbed\n\n' +
      'usage: swf <command> [options]   (swf <command> --help for its options)\n\ncommands:\n' +
      commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n') +
      '\n\nEvery command takes --store URL (default: $SWF_STORE, else sqlite:./swf-data/swf.db).\n' +
      'Stores: memory:, sqlite:<path>, esdb://host:2113?tls=false\n',
  );
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    help(io);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.stdout.write('swf-es 0.1.0\n');
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`swf: unknown command '${name}' (swf --help lists the commands)\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (e: unknown) {
    io.stderr.write(`swf ${name}: ${describeError(e)}\n`);
    if (io.env.SWF_DEBUG && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return exitCodeOf(e);
  }
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
