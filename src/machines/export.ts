/**
 * Exporting the machines: the config JSON `createMachine` loads (actions and guards by name), the same as
 * `createMachine({...})` code for Stately Studio's import, and Mermaid `stateDiagram-v2`. Also the definitions and
 * their hash, which every run records so a replay can tell when the rules changed.
 */
import { createHash } from 'node:crypto';
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { ValidationError } from '../errors.js';
import type { Reference } from './fastPath.js';
import { assertMachineName, defaultContext, MACHINE_NAMES, machines, type MachineName } from './registry.js';

export const EXPORT_FORMATS = ['json', 'ts', 'mermaid'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The machine's config as JSON: what `createMachine` takes, with the default input's context. */
export function machineDefinition(name: MachineName): { [key: string]: Json } {
  assertMachineName(name);
  const config = machines[name].config;
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

/** The name of a reference; a function is inline unless it is one of XState's built-in actions (they carry a type). */
const refName = (ref: Reference): string => {
  if (typeof ref === 'string') return ref;
  if (typeof ref !== 'function') return ref.type;
  return 'type' in ref && typeof ref.type === 'string' ? ref.type : '(inline)';
};
const refParams = (ref: Reference | undefined): unknown => (typeof ref === 'object' ? ref.params : undefined);
const isRefusal = (t: AnyTransitionDefinition): boolean =>
  !t.target && t.actions.length > 0 && t.actions.every((a) => refName(a).startsWith('refuse'));

function leavesOf(node: AnyStateNode): AnyStateNode[] {
  const children = Object.values(node.states);
  return children.length === 0 ? [node] : children.flatMap(leavesOf);
}
const mermaidId = (node: AnyStateNode): string => node.path.join('_');
const stateName = (node: AnyStateNode): string => node.path.join('.');

function label(eventType: string, t: AnyTransitionDefinition): string {
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
  const visit = (node: AnyStateNode): void => {
    for (const [event, list] of node.transitions) {
      list.forEach((t, i) => {
        if (!isRefusal(t)) return;
        const params = refParams(t.actions[0]);
        const state = node.path.length ? stateName(node) : 'any state';
        const reason =
          typeof params === 'object' && params !== null && 'reason' in params && typeof params.reason === 'string'
            ? params.reason
            : '';
        rows.push({ state, event, reason, otherwise: i > 0 });
      });
    }
    Object.values(node.states).forEach(visit);
  };
  visit(machine.root);
  return rows;
}

/** One accepted transition of a state: where the event takes it (itself, for a transition without a target). */
export interface TransitionRow {
  event: string;
  from: string;
  to: string;
  guard?: string;
  actions: string[];
}

/**
 * Where each event goes: every accepted transition declared on a state, from that state (a nested one as
 * `beam.ready`) to its target, in declaration order. Transitions declared on an ancestor for all the states below
 * it are listed once, from the ancestor (the root: `any state`).
 */
export function transitionSummary(machine: AnyStateMachine): TransitionRow[] {
  const rows: TransitionRow[] = [];
  const visit = (node: AnyStateNode): void => {
    for (const [event, list] of node.transitions) {
      for (const t of list) {
        if (isRefusal(t)) continue;
        const from = node.path.length ? stateName(node) : 'any state';
        const target = t.target?.[0];
        rows.push({
          event,
          from,
          to: target ? stateName(target) : from,
          ...(t.guard !== undefined ? { guard: refName(t.guard) } : {}),
          actions: t.actions.map(refName),
        });
      }
    }
    Object.values(node.states).forEach(visit);
  };
  visit(machine.root);
  return rows;
}

/** `END_RUN: beam.not_ready → beam.not_ready [runActive]; beam.ready → beam.not_ready; …`, one line per event. */
export function summaryLines(machine: AnyStateMachine, events?: ReadonlySet<string>): string[] {
  const byEvent = new Map<string, TransitionRow[]>();
  for (const r of transitionSummary(machine)) {
    if (events && !events.has(r.event)) continue;
    byEvent.set(r.event, [...(byEvent.get(r.event) ?? []), r]);
  }
  return [...byEvent].map(
    ([event, rows]) =>
      `${event}: ${rows.map((r) => `${r.from} → ${r.to}${r.guard ? ` [${r.guard}]` : ''}`).join('; ')}`,
  );
}

function ancestors(node: AnyStateNode): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  for (let n = node.parent; n; n = n.parent) out.push(n);
  return out;
}

/** The child of `ancestor` on the way down to `node` (`node` itself when it is a child). */
function childToward(ancestor: AnyStateNode, node: AnyStateNode): AnyStateNode {
  let n = node;
  while (n.parent && n.parent !== ancestor) n = n.parent;
  return n;
}
function commonAncestor(a: AnyStateNode, b: AnyStateNode): AnyStateNode {
  const above = new Set<AnyStateNode>();
  for (let n: AnyStateNode | undefined = a.parent; n; n = n.parent) above.add(n);
  for (let n: AnyStateNode | undefined = b.parent; n; n = n.parent) if (above.has(n)) return n;
  throw new Error('states of two machines');
}

/**
 * The body of a machine's `stateDiagram-v2` (no header), ids prefixed with `prefix`. A nested state is drawn inside
 * its parent (a composite state, `state beam { … }`); an arrow is drawn inside the innermost state holding both
 * ends, between its children, so an arrow that leaves a composite state starts at its border and names the exact
 * states in its label (`END_RUN / endRun (run.physics → beam.not_ready)`). Transitions declared for every state
 * below an ancestor are a note; final states (tag `final`) point to `[*]`. Refusals are not drawn.
 */
function mermaidBody(machine: AnyStateMachine, prefix: string, indent: string): string[] {
  const root = machine.root;
  const id = (node: AnyStateNode): string => `${prefix}${mermaidId(node)}`;
  const edges = new Map<AnyStateNode, string[]>(); // by the state whose block holds them
  const add = (holder: AnyStateNode, line: string): void => {
    edges.set(holder, [...(edges.get(holder) ?? []), line]);
  };
  const leaves = leavesOf(root);
  for (const leaf of leaves) {
    for (const [event, list] of leaf.transitions) {
      for (const t of list) {
        if (isRefusal(t)) continue;
        const target = t.target?.[0] ?? leaf;
        const holder = target === leaf ? leaf.parent! : commonAncestor(leaf, target);
        const from = childToward(holder, leaf);
        const to = childToward(holder, target);
        const lifted = from !== leaf || to !== target ? ` (${stateName(leaf)} → ${stateName(target)})` : '';
        add(holder, `${id(from)} --> ${id(to)} : ${label(event, t)}${lifted}`);
      }
    }
    if (leaf.tags.includes('final')) add(leaf.parent!, `${id(leaf)} --> [*]`);
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
    add(anchor.parent!, `note right of ${id(anchor)}`);
    add(anchor.parent!, `  In ${covered.map(stateName).join(', ')}:`);
    for (const { event, t } of accepted) {
      const target = t.target?.[0] ? ` → ${stateName(t.target[0])}` : '';
      add(anchor.parent!, `  ${label(event, t)}${target}`);
    }
    add(anchor.parent!, 'end note');
  }
  const block = (node: AnyStateNode, pad: string): string[] => {
    const lines: string[] = [];
    const children = Object.values(node.states);
    const initial = node.initial.target[0]; // empty for an atomic state
    for (const child of children) {
      if (Object.keys(child.states).length > 0) {
        lines.push(`${pad}state "${child.key}" as ${id(child)} {`, ...block(child, `${pad}  `), `${pad}}`);
      } else lines.push(`${pad}state "${child.key}" as ${id(child)}`);
    }
    if (initial) lines.push(`${pad}[*] --> ${id(initial)}`);
    for (const line of edges.get(node) ?? []) lines.push(`${pad}${line}`);
    return lines;
  };
  return block(root, indent);
}

/** The `%%` comment lines that say where each event drawn as an arrow goes (the exact states, guards). */
function summaryComments(machine: AnyStateMachine, indent: string): string[] {
  const drawn = new Set(
    leavesOf(machine.root).flatMap((l) =>
      [...l.transitions].filter(([, list]) => list.some((t) => !isRefusal(t))).map(([e]) => e),
    ),
  );
  return summaryLines(machine, drawn).map((l) => `${indent}%% ${l}`);
}

/**
 * `stateDiagram-v2` of one machine, nested states drawn nested (see `mermaidBody`), after `%%` comments that say
 * where each event goes. State ids carry the machine's name (`daq_beam_ready`), so several machines can share one
 * diagram (`combinedMermaid`).
 */
export function toMermaid(machine: AnyStateMachine, name = machine.id || 'machine'): string {
  return [
    'stateDiagram-v2',
    `  %% The ${name} machine. Where each event goes:`,
    ...summaryComments(machine, '  '),
    ...mermaidBody(machine, `${name}_`, '  '),
    '',
  ].join('\n');
}

/**
 * Every machine in one `stateDiagram-v2` (valid Mermaid pasted whole): each machine a composite state of its own,
 * after a `%% <file>` comment naming the file `--out` writes it to.
 */
export function combinedMermaid(): string {
  const lines = ['stateDiagram-v2'];
  for (const name of MACHINE_NAMES) {
    lines.push(
      `  %% ${name}.${EXPORT_EXTENSIONS.mermaid}: the ${name} machine. Where each event goes:`,
      ...summaryComments(machines[name], '  '),
      `  state "${name} machine" as ${name}_machine {`,
      ...mermaidBody(machines[name], `${name}_`, '    '),
      '  }',
    );
  }
  return `${lines.join('\n')}\n`;
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
      return toMermaid(machines[name], name);
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
    const description = machine.config.description ?? '';
    parts.push(
      `### The ${name} machine`,
      '',
      description,
      '',
      '```mermaid',
      toMermaid(machine, name).trimEnd(),
      '```',
      '',
    );
    parts.push('Where each event goes (an arrow that leaves a nested state names its exact states):', '');
    parts.push('| Event | From | To | Guard |', '|---|---|---|---|');
    for (const r of transitionSummary(machine)) {
      parts.push(`| ${r.event} | ${r.from} | ${r.to} | ${r.guard ?? ''} |`);
    }
    parts.push('');
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
