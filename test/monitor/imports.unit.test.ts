/** The monitor reads runs through the projections and the RunState rule, never through an agent's code. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

/** Every module of ours `file` reaches through relative imports, with the path that reached it. */
function reach(file: string, seen = new Map<string, string>(), from = 'start'): Map<string, string> {
  if (seen.has(file)) return seen;
  seen.set(file, from);
  for (const m of readFileSync(file, 'utf8').matchAll(/from\s+['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
    if (existsSync(target)) reach(target, seen, file);
  }
  return seen;
}

describe('the monitor', () => {
  it('does not reach src/agents, not even through src/replay', () => {
    const monitor = join(src, 'monitor');
    const seen = new Map<string, string>();
    for (const f of readdirSync(monitor)) if (f.endsWith('.ts')) reach(join(monitor, f), seen);
    expect(seen.size).toBeGreaterThan(10);
    const agents = [...seen].filter(([f]) => f.startsWith(join(src, 'agents'))).map(([f, by]) => `${by} → ${f}`);
    expect(agents).toEqual([]);
  });
});
