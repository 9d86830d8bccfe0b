import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValidationError } from '../../errors.js';
import { EXPORT_FORMATS, type ExportFormat, exportMachines } from '../../machines/export.js';
import type { Command } from '../context.js';
import { parse } from '../context.js';

const usage = 'swf machines export [--format json|ts|mermaid] [--out DIR]';

export const machinesCommand: Command = {
  name: 'machines',
  summary: 'export the run, slice and DAQ state machines (XState JSON, Stately Studio code, Mermaid)',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { format: { type: 'string' }, out: { type: 'string' } }, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\nOne file per machine. json: the config createMachine() takes (actions and guards by name);\n` +
          `ts: createMachine({...}) code for Stately Studio's import; mermaid: stateDiagram-v2.\n` +
          `Without --out the files are printed to stdout, each after a '// <file>' line.\n`,
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
      mkdirSync(dir, { recursive: true });
      for (const f of files) {
        writeFileSync(join(dir, f.filename), f.content);
        io.stdout.write(`${join(dir, f.filename)}\n`);
      }
    } else {
      for (const f of files) io.stdout.write(`// ${f.filename}\n${f.content}\n`);
    }
    return 0;
  },
};
