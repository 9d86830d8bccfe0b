/**
 * How `swf` writes its logs: pino's JSON lines (one object a line, for a log collector) or readable lines for a
 * person at a terminal. JSON unless stderr is a terminal; `--log-format json|pretty` (or SWF_LOG_FORMAT) decides.
 */
import { ValidationError } from '../errors.js';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function parseLogFormat(value: string, where: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new ValidationError(`${where} must be json or pretty, got '${value}'`, { field: 'log-format' });
}

/** The format for this invocation: the option, else SWF_LOG_FORMAT, else pretty on a terminal and JSON otherwise. */
export function logFormatFor(option: LogFormat | undefined, env: NodeJS.ProcessEnv, isTty: boolean): LogFormat {
  if (option !== undefined) return option;
  const fromEnv = env.SWF_LOG_FORMAT;
  if (fromEnv !== undefined && fromEnv !== '') return parseLogFormat(fromEnv, 'SWF_LOG_FORMAT');
  return isTty ? 'pretty' : 'json';
}

const LEVELS: Record<number, { name: string; colour: number }> = {
  10: { name: 'TRACE', colour: 90 },
  20: { name: 'DEBUG', colour: 36 },
  30: { name: 'INFO', colour: 32 },
  40: { name: 'WARN', colour: 33 },
  50: { name: 'ERROR', colour: 31 },
  60: { name: 'FATAL', colour: 35 },
};
const OMITTED = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname', 'err']);

const pad2 = (n: number, w = 2): string => String(n).padStart(w, '0');
const clock = (t: number): string => {
  const d = new Date(t);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${pad2(d.getMilliseconds(), 3)}`;
};
const valueText = (v: unknown): string => {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
};

/**
 * One pino JSON line as a readable line: `14:02:11.532 WARN  fastproc: lease expired slice=swf.… attempt=2`, an
 * error's type and message after it (and its stack with `stack`); colours only when `colour`.
 */
export function prettyLine(json: string, options: { colour?: boolean; stack?: boolean } = {}): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`; // not pino's: pass it on as it is
  }
  const level = LEVELS[o.level as number] ?? { name: String(o.level), colour: 0 };
  const levelText = level.name.padEnd(5);
  const name = typeof o.name === 'string' ? ` ${o.name}:` : '';
  const fields = Object.entries(o)
    .filter(([k, v]) => !OMITTED.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${valueText(v)}`);
  const err = o.err as { type?: unknown; message?: unknown; stack?: unknown } | undefined;
  const errText =
    err && typeof err === 'object'
      ? ` ${typeof err.type === 'string' ? `${err.type}: ` : ''}${typeof err.message === 'string' ? err.message : valueText(err.message)}`
      : '';
  const time = typeof o.time === 'number' ? clock(o.time) : '';
  const head = options.colour ? `\x1b[${level.colour}m${levelText}\x1b[0m` : levelText;
  const line = `${time} ${head}${name} ${typeof o.msg === 'string' ? o.msg : valueText(o.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}${errText}`;
  const stack = options.stack && typeof err?.stack === 'string' ? `\n${err.stack.replace(/^/gm, '    ')}` : '';
  return `${line}${stack}\n`;
}
