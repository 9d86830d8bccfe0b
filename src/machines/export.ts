/**
 * Exporting the machines: the config JSON `createMachine` loads (actions and guards by name), the same as
 * `createMachine({...})` code for Stately Studio's import, and Mermaid `stateDiagram-v2`. Also the definitions and
 * their hash, which every run records so a replay can tell when the rules changed.
 */
import { createHash } from 'node:crypto';
import type { AnyStateMachine } from 'xstate';
import { ValidationError } from '../errors.js';
import { assertMachineName, defaultContext, MACHINE_NAMES, machines, type MachineName } from './registry.js';

export const EXPORT_FORMATS = ['json', 'ts', 'mermaid'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The machine's config as JSON: what `createMachine` takes, with the default input's context. */
export function machineDefinition(name: MachineName): { [key: string]: Json } {
  assertMachineName(name);
  const config = machines[name].config as Record<string, unknown>;
  return JSON.parse(JSON.stringify({ ...config, context: defaultContext(name) })) as { [key: string]: Json };
}

/** Every machine's definition, by name. */
export function machineDefinitions(): Record<MachineName, { [key: string]: Json }> {
  return Object.fromEntries(MACHINE_NAMES.map((n) => [n, machineDefinition(n)])) as Record<
    MachineName,
    { [key: string]: Json }
  >;
}

/** JSON with object keys sorted at every level (a stable text for hashing). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** sha256 (hex) of the canonical JSON of the definitions (today's, unless given). */
export function machineHash(definitions: unknown = machineDefinitions()): string {
  return createHash('sha256').update(canonicalJson(definitions)).digest('hex');
}

// ---- Mermaid ---------------------------------------------------------------------------------------

interface NodeLike {
  key: string;
  path: string[];
  tags: string[];
  states: Record<string, NodeLike>;
  parent?: NodeLike;
  initial: { target: NodeLike[] } | undefined;
  transitions: Map<string, TransitionLike[]>;
}
interface TransitionLike {
  guard?: unknown;
  actions: unknown[];
  target?: NodeLike[];
}

const refName = (ref: unknown): string => {
  if (typeof ref === 'string') return ref;
  const type = (ref as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : '(inline)';
};
const refParams = (ref: unknown): unknown =>
  typeof ref === 'object' && ref !== null ? (ref as { params?: unknown }).params : undefined;
const isRefusal = (t: TransitionLike): boolean =>
  !t.target && t.actions.length > 0 && t.actions.every((a) => refName(a).startsWith('refuse'));

function leavesOf(node: NodeLike): NodeLike[] {
  const children = Object.values(node.states);
  return children.length === 0 ? [node] : children.flatMap(leavesOf);
}
function leafOf(node: NodeLike): NodeLike {
  let n = node;
  while (Object.keys(n.states).length > 0 && n.initial?.target[0]) n = n.initial.target[0];
  return n;
}
const mermaidId = (node: NodeLike): string => node.path.join('_');
const stateName = (node: NodeLike): string => node.path.join('.');

function label(eventType: string, t: TransitionLike): string {
  const guard = t.guard === undefined ? '' : ` [${refName(t.guard)}]`;
  const actions = t.actions.map(refName);
  return `${eventType}${guard}${actions.length ? ` / ${actions.join(', ')}` : ''}`;
}

export interface RefusalRow {
  state: string;
  event: string;
  reason: string;
  /** Refused only when no guarded transition before it applies. */
  otherwise: boolean;
}

/** Every refusal the machine declares: in which state, of which event, with what reason. */
export function refusalTable(machine: AnyStateMachine): RefusalRow[] {
  const rows: RefusalRow[] = [];
  const visit = (node: NodeLike): void => {
    for (const [event, list] of node.transitions) {
      list.forEach((t, i) => {
        if (!isRefusal(t)) return;
        const params = refParams(t.actions[0]) as { reason?: unknown } | undefined;
        const state = node.path.length ? stateName(node) : 'any state';
        const reason = typeof params?.reason === 'string' ? params.reason : '';
        rows.push({ state, event, reason, otherwise: i > 0 });
      });
    }
    Object.values(node.states).forEach(visit);
  };
  visit(machine.root as unknown as NodeLike);
  return rows;
}

/**
 * `stateDiagram-v2`, one box per leaf state (a nested state shows as `beam.ready`): accepted transitions as
 * arrows (`EVENT [guard] / actions`), transitions declared for every state as a note, final states (tag `final`)
 * pointing to `[*]`. Refusals are not drawn; `refusalTable` lists them.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root as unknown as NodeLike;
  const leaves = leavesOf(root);
  const lines = ['stateDiagram-v2'];
  for (const leaf of leaves) {
    if (leaf.path.length > 1) lines.push(`  state "${stateName(leaf)}" as ${mermaidId(leaf)}`);
  }
  lines.push(`  [*] --> ${mermaidId(leafOf(root))}`);
  for (const leaf of leaves) {
    for (const [event, list] of leaf.transitions) {
      for (const t of list) {
        if (isRefusal(t)) continue;
        const target = t.target?.[0] ? leafOf(t.target[0]) : leaf;
        lines.push(`  ${mermaidId(leaf)} --> ${mermaidId(target)} : ${label(event, t)}`);
      }
    }
    if (leaf.tags.includes('final')) lines.push(`  ${mermaidId(leaf)} --> [*]`);
  }
  // Transitions declared on an ancestor apply in every leaf below it that does not handle the event itself.
  const declaring = new Set(leaves.flatMap(ancestors));
  for (const node of declaring) {
    const accepted = [...node.transitions].flatMap(([event, list]) =>
      list.filter((t) => !isRefusal(t)).map((t) => ({ event, t })),
    );
    const covered = leavesOf(node).filter((l) => accepted.some(({ event }) => !l.transitions.has(event)));
    const anchor = covered[0];
    if (!anchor) continue;
    lines.push(`  note right of ${mermaidId(anchor)}`);
    lines.push(`    In ${covered.map(stateName).join(', ')}:`);
    for (const { event, t } of accepted) {
      const target = t.target?.[0] ? ` → ${stateName(leafOf(t.target[0]))}` : '';
      lines.push(`    ${label(event, t)}${target}`);
    }
    lines.push('  end note');
  }
  return `${lines.join('\n')}\n`;
}

function ancestors(node: NodeLike): NodeLike[] {
  const out: NodeLike[] = [];
  for (let n = node.parent; n; n = n.parent) out.push(n);
  return out;
}

// ---- files -----------------------------------------------------------------------------------------

const exportName = (name: MachineName): string => `${name}Machine`;

/** One machine in one format, as file content. */
export function exportMachine(name: MachineName, format: ExportFormat): string {
  assertMachineName(name);
  switch (format) {
    case 'json':
      return `${JSON.stringify(machineDefinition(name), null, 2)}\n`;
    case 'ts':
      return [
        `// The swf-es ${name} machine, exported by \`swf machines export --format ts\`.`,
        '// Actions and guards are referenced by name; swf-es implements them (src/machines/).',
        "import { createMachine } from 'xstate';",
        '',
        `export const ${exportName(name)} = createMachine(${JSON.stringify(machineDefinition(name), null, 2)});`,
        '',
      ].join('\n');
    case 'mermaid':
      return toMermaid(machines[name]);
    default: {
      const never: never = format;
      throw new ValidationError(`unknown export format ${JSON.stringify(never)}: expected json, ts or mermaid`, {
        field: 'format',
      });
    }
  }
}

export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = { json: 'json', ts: 'ts', mermaid: 'mmd' };

/** Every machine in one format: `{ filename, content }` per machine (`run.json`, `run.ts`, `run.mmd`, ...). */
export function exportMachines(format: ExportFormat): { filename: string; content: string }[] {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ValidationError(`unknown export format ${JSON.stringify(format)}: expected json, ts or mermaid`, {
      field: 'format',
    });
  }
  return MACHINE_NAMES.map((name) => ({
    filename: `${name}.${EXPORT_EXTENSIONS[format]}`,
    content: exportMachine(name, format),
  }));
}

// ---- docs/machines.md ------------------------------------------------------------------------------

export const GENERATED_START = '<!-- generated by src/machines/export.ts (renderMachineDocs): do not edit below -->';
export const GENERATED_END = '<!-- end of generated part -->';

/** The generated part of docs/machines.md: per machine, its Mermaid diagram and its refusals. */
export function renderMachineDocs(): string {
  const parts: string[] = [GENERATED_START, ''];
  for (const name of MACHINE_NAMES) {
    const machine = machines[name];
    const description = (machine.config as { description?: string }).description ?? '';
    parts.push(`### The ${name} machine`, '', description, '', '```mermaid', toMermaid(machine).trimEnd(), '```', '');
    parts.push('Refused (the state stays; `context.lastRefusal` records the reason):', '');
    parts.push('| State | Event | Reason |', '|---|---|---|');
    for (const r of refusalTable(machine)) {
      parts.push(`| ${r.state} | ${r.event}${r.otherwise ? ' (if its guard fails)' : ''} | ${r.reason} |`);
    }
    parts.push('');
  }
  parts.push(`Definitions hash (\`machineHash()\`): \`${machineHash()}\``, '', GENERATED_END);
  return parts.join('\n');
}

/** `markdown` with its generated part replaced by today's (appended if it has none). */
export function updateMachineDocs(markdown: string): string {
  const start = markdown.indexOf(GENERATED_START);
  const end = markdown.indexOf(GENERATED_END);
  const generated = renderMachineDocs();
  if (start === -1 || end === -1 || end < start) return `${markdown.trimEnd()}\n\n${generated}\n`;
  return `${markdown.slice(0, start)}${generated}${markdown.slice(end + GENERATED_END.length)}`;
}
