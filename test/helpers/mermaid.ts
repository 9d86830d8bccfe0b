/**
 * A strict check of the Mermaid `stateDiagram-v2` subset swf-es writes (mermaid itself needs a browser DOM to
 * parse; too heavy for a dev dependency). Throws on the first line Mermaid would refuse or misread: a second
 * header, a line of another syntax (`// file`), an id declared twice, an arrow or note naming a state not declared
 * in its own block (Mermaid cannot draw an arrow between states of different composite states), an unbalanced
 * `{`/`}`, a composite state without exactly one `[*] -->` start (the diagram itself: at most one), a label with `;`, `#` or `%%`.
 */
export interface MermaidState {
  id: string;
  label: string;
  parent: string | undefined;
  composite: boolean;
}

export function checkStateDiagram(text: string): { states: Map<string, MermaidState>; arrows: string[] } {
  const ID = '[A-Za-z][A-Za-z0-9_]*';
  const lines = text.split('\n');
  const states = new Map<string, MermaidState>();
  const arrows: string[] = [];
  const stack: { id: string | undefined; children: Set<string>; starts: number }[] = [
    { id: undefined, children: new Set(), starts: 0 },
  ];
  let header = false;
  let inNote = false;
  const fail = (n: number, why: string): never => {
    throw new Error(`line ${n + 1}: ${why}: ${JSON.stringify(lines[n])}`);
  };
  const closeBlock = (n: number): void => {
    const b = stack[stack.length - 1]!;
    if (b.starts > 1 || (b.id !== undefined && b.starts !== 1))
      fail(n, `block ${b.id ?? '(root)'} has ${b.starts} [*] starts`);
  };
  lines.forEach((raw, n) => {
    const line = raw.trim();
    if (inNote) {
      if (line === 'end note') inNote = false;
      else if (/end note|;|#/.test(line)) fail(n, 'note text Mermaid would misread');
      return;
    }
    if (line === '' || line.startsWith('%%')) return;
    if (!header) {
      if (line !== 'stateDiagram-v2') fail(n, 'the first line must be stateDiagram-v2');
      header = true;
      return;
    }
    const block = stack[stack.length - 1]!;
    const local = (id: string): void => {
      if (!block.children.has(id)) fail(n, `'${id}' is not a state declared in this block`);
    };
    let m: RegExpMatchArray | null;
    if ((m = line.match(new RegExp(`^state "([^"]+)" as (${ID})( \\{)?$`)))) {
      const id = m[2]!;
      if (states.has(id)) fail(n, `state '${id}' declared twice`);
      states.set(id, { id, label: m[1]!, parent: block.id, composite: m[3] !== undefined });
      block.children.add(id);
      if (m[3]) stack.push({ id, children: new Set(), starts: 0 });
    } else if (line === '}') {
      if (stack.length === 1) fail(n, 'a } without its {');
      closeBlock(n);
      stack.pop();
    } else if ((m = line.match(new RegExp(`^\\[\\*\\] --> (${ID})$`)))) {
      local(m[1]!);
      block.starts++;
    } else if ((m = line.match(new RegExp(`^(${ID}) --> \\[\\*\\]$`)))) {
      local(m[1]!);
    } else if ((m = line.match(new RegExp(`^(${ID}) --> (${ID})(?: : (.+))?$`)))) {
      local(m[1]!);
      local(m[2]!);
      if (m[3] !== undefined && /;|#|%%/.test(m[3])) fail(n, 'a label Mermaid would misread');
      arrows.push(line);
    } else if ((m = line.match(new RegExp(`^note (?:right|left) of (${ID})$`)))) {
      local(m[1]!);
      inNote = true;
    } else fail(n, 'not stateDiagram-v2 syntax');
  });
  if (!header) throw new Error('no stateDiagram-v2 header');
  if (inNote) throw new Error('a note without end note');
  if (stack.length !== 1) throw new Error(`${stack.length - 1} composite state(s) not closed`);
  closeBlock(lines.length - 1);
  return { states, arrows };
}
