/**
 * `swf run`'s progress on stderr. On a terminal: one line redrawn in place, a bar of the slices that are final with
 * their rate and the time left. Otherwise (a file, a pipe, CI): a plain line, written only when what it says changed
 * (at most one a second), and the last one at the end.
 */
import type { Progress } from '../agents/workflow.js';

/** The phase as an operator should read it: `completed` is the end of data taking, not of the run. */
export function phaseLabel(p: Progress): string {
  const r = p.run;
  if (p.phase === 'done') return p.finished ? 'finished' : `stopped in phase ${r?.phase ?? 'starting'}`;
  if (p.phase === 'completed' && !p.finished) {
    const left = r ? r.slices_created - r.slices_completed - r.slices_failed : 0;
    return `completed: data taking ended, processing ${left} slices`;
  }
  return p.phase;
}

/** The plain progress line: what the run holds, no timing (so it changes only when the run does). */
export function progressLine(p: Progress): string {
  const r = p.run;
  const inFlight = r ? r.slices_queued + r.slices_processing : 0;
  const missing = p.missing_agents?.length ? `  (no live agent: ${p.missing_agents.join(', ')})` : '';
  return (
    `${p.execution_id ?? '…'} run ${p.run_number ?? '…'} [${phaseLabel(p)}] ` +
    `STFs ${r?.stf_files ?? p.stf_files}  samples ${r?.stf_samples_received ?? 0}  ` +
    `slices ${r?.slices_completed ?? 0} done / ${r?.slices_failed ?? 0} failed / ${inFlight} in flight of ${r?.slices_created ?? 0}` +
    missing
  );
}

const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
};

/** Slices made final per second, over the last `windowMs` of wall time. */
export class RateMeter {
  private readonly samples: { at: number; done: number }[] = [];
  constructor(private readonly windowMs = 10_000) {}

  add(at: number, done: number): void {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
  }

  /** Per second; undefined until there is a span to measure. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 500) return undefined;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }
}

/** The terminal line: a bar of final slices out of the run's (expected) total, rate and ETA. */
export function barLine(p: Progress, rate: number | undefined, width = 24): string {
  const r = p.run;
  const final = r ? r.slices_completed + r.slices_failed : 0;
  const total = Math.max(p.expected_slices ?? 0, r?.slices_created ?? 0);
  const fraction = total > 0 ? Math.min(1, final / total) : 0;
  const filled = Math.round(fraction * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const left = total - final;
  const eta = rate !== undefined && rate > 0 ? duration(left / rate) : '--:--';
  const missing = p.missing_agents?.length ? `  no live agent: ${p.missing_agents.join(', ')}` : '';
  return (
    `run ${p.run_number ?? '…'} [${phaseLabel(p)}] ${bar} ${String(Math.floor(fraction * 100)).padStart(3)}% ` +
    `${final}/${total} slices  ${rate === undefined ? '-' : rate.toFixed(1)}/s  ETA ${eta}  ` +
    `STFs ${r?.stf_files ?? p.stf_files}  samples ${r?.stf_samples_received ?? 0}${missing}`
  );
}

export interface ProgressSink {
  write(s: string): unknown;
}

/** Writes progress reports to a terminal (redrawn bar) or a plain stream (a line per change). */
export class ProgressDisplay {
  private readonly meter = new RateMeter();
  private lastLine = '';
  private lastPlainAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly out: ProgressSink,
    private readonly tty: boolean,
    private readonly now: () => number = Date.now,
    private readonly minIntervalMs = 1000,
  ) {}

  report(p: Progress): void {
    const done = p.phase === 'done';
    if (this.tty) {
      const r = p.run;
      this.meter.add(this.now(), r ? r.slices_completed + r.slices_failed : 0);
      // Cut to the terminal's width: a wrapped line could not be redrawn in place.
      const columns = (this.out as { columns?: unknown }).columns;
      const line = barLine(p, this.meter.rate());
      const shown = typeof columns === 'number' && columns > 1 ? line.slice(0, columns - 1) : line;
      this.out.write(`\r\x1b[2K${shown}${done ? '\n' : ''}`);
      return;
    }
    const line = progressLine(p);
    if (line === this.lastLine) return;
    if (!done && this.now() - this.lastPlainAt < this.minIntervalMs) return;
    this.lastLine = line;
    this.lastPlainAt = this.now();
    this.out.write(`${line}\n`);
  }
}
