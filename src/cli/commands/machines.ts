import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ValidationError } from '../../errors.js';
import { combinedMermaid, EXPORT_FORMATS, type ExportFormat, exportMachines } from '../../machines/export.js';
import type { Command } from '../context.js';
import { parse, STORE_OPTION } from '../context.js';

const usage = 'swf machines export [--format json|ts|mermaid] [--out DIR]';

// --store is accepted (every command takes it, `swf --store URL machines export` too) and not used: no store is read.
const options = { ...STORE_OPTION, format: { type: 'string' }, out: { type: 'string' } } as const;

/** `mkdir -p` one level at a time: Node's recursive mkdirSync spins forever under /proc. */
function makeFolder(dir: string): void {
  const missing: string[] = [];
  let d = dir;
  while (!existsSync(d)) {
    missing.unshift(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) mkdirSync(m);
}

export const machinesCommand: Command = {
  name: 'machines',
  summary: 'export the run, slice and DAQ state machines (XState JSON, Stately Studio code, Mermaid)',
  usage,
  options,
  subcommands: ['export'],
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nOne file per machine. json: the config createMachine() takes (actions and guards by name);\n` +
          `ts: createMachine({...}) code for Stately Studio's import; mermaid: stateDiagram-v2, nested states drawn\n` +
          `nested, after '%%' comments that say where each event goes (which END_RUN leads from which state to which).\n` +
          `Without --out the files are printed to stdout, each after a '// <file>' line; Mermaid as one diagram that\n` +
          `is valid pasted whole (each machine a composite state, after a '%% <file>' comment).\n`,
      );
      return 0;
    }
    if (positionals[0] !== 'export' || positionals.length > 1)
      throw new ValidationError(`unknown machines subcommand; usage: ${usage}`);
    const format = (values.format ?? 'json') as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) {
      throw new ValidationError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got '${format}'`, {
        field: 'format',
      });
    }
    const files = exportMachines(format);
    if (values.out) {
      const dir = resolve(io.cwd, values.out);
      try {
        makeFolder(dir);
        for (const f of files) writeFileSync(join(dir, f.filename), f.content);
      } catch (e: unknown) {
        const why = (e as { code?: unknown }).code;
        throw new ValidationError(
          `--out ${dir}: cannot write there (${typeof why === 'string' ? why : e instanceof Error ? e.message : String(e)})`,
          { field: 'out' },
        );
      }
      for (const f of files) io.stdout.write(`${join(dir, f.filename)}\n`);
    } else {
      // One text that is valid pasted whole: Mermaid as one diagram (a `%% <file>` comment before each machine),
      // JSON and TypeScript each file after a `// <file>` line.
      if (format === 'mermaid') io.stdout.write(combinedMermaid());
      else for (const f of files) io.stdout.write(`// ${f.filename}\n${f.content}\n`);
    }
    return 0;
  },
};
