/*
 * State charts drawn as SVG from the machines' JSON definitions (GET /api/machines/): no Mermaid, no CDN.
 * States sit in a row in the definition's order (the initial one first); transitions to a later state arc above the
 * row, back to an earlier one below. Refusals (transitions that only run a `refuse*` action) are not drawn;
 * transitions that stay in a state are listed under it, and those declared for every state in a note.
 */
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const NODE_W = 118;
  const NODE_H = 38;
  const GAP = 70;

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const asList = (t) => (Array.isArray(t) ? t : t === undefined ? [] : [t]);
  const actionName = (a) => (typeof a === 'string' ? a : a && typeof a.type === 'string' ? a.type : '');
  const isRefusal = (t) =>
    !t.target && asList(t.actions).length > 0 && asList(t.actions).every((a) => actionName(a).startsWith('refuse'));
  const guardName = (t) => (t.guard === undefined ? '' : typeof t.guard === 'string' ? t.guard : t.guard.type || '');

  /** `physics`, `.physics`, `#run.physics` → `physics` (top-level states only). */
  function targetOf(t, states) {
    const raw = asList(t.target)[0];
    if (typeof raw !== 'string') return undefined;
    const parts = raw.replace(/^#/, '').split('.').filter(Boolean);
    for (let i = parts.length - 1; i >= 0; i--) if (states.includes(parts[i])) return parts[i];
    return undefined;
  }

  /** The graph of a flat machine definition: states in document order, edges grouped by (from, to). */
  function graphOf(def) {
    const names = Object.keys(def.states || {});
    const first = def.initial && names.includes(def.initial) ? def.initial : names[0];
    const order = first === undefined ? [] : [first, ...names.filter((n) => n !== first)];
    const edges = new Map();
    const loops = new Map();
    for (const s of order) {
      for (const [event, ts] of Object.entries((def.states[s] && def.states[s].on) || {})) {
        for (const t of asList(ts)) {
          if (isRefusal(t)) continue;
          const to = targetOf(t, names);
          const label = event + (guardName(t) ? ` [${guardName(t)}]` : '');
          if (to === undefined || to === s) {
            if (!(loops.get(s) || []).includes(event)) loops.set(s, [...(loops.get(s) || []), event]);
            continue;
          }
          const key = `${s}→${to}`;
          const e = edges.get(key) || { from: s, to, labels: [] };
          if (!e.labels.includes(event)) e.labels.push(event);
          e.title = (e.title ? e.title + '\n' : '') + label;
          edges.set(key, e);
        }
      }
    }
    const everywhere = [];
    for (const [event, ts] of Object.entries(def.on || {})) {
      if (asList(ts).some((t) => !isRefusal(t))) everywhere.push(event);
    }
    const finals = names.filter((n) => asList(def.states[n].tags).includes('final'));
    return { order, edges: [...edges.values()], loops, everywhere, finals };
  }

  /**
   * An SVG of `def`. `current`: the state to highlight; `counts`: a number to show in each state
   * (e.g. slices per status).
   */
  function drawStateChart(def, options) {
    const opts = options || {};
    const g = graphOf(def);
    const x = new Map(g.order.map((s, i) => [s, 20 + i * (NODE_W + GAP)]));
    const span = (e) => Math.abs(g.order.indexOf(e.to) - g.order.indexOf(e.from));
    const above = g.edges.filter((e) => g.order.indexOf(e.to) > g.order.indexOf(e.from));
    const below = g.edges.filter((e) => g.order.indexOf(e.to) < g.order.indexOf(e.from));
    const arc = (e) => 26 + 30 * (span(e) - 1);
    const topRoom = Math.max(30, ...above.map(arc)) + 22;
    const bottomRoom = Math.max(30, ...below.map(arc)) + 22;
    const rowY = topRoom;
    const loopsRoom = Math.max(0, ...[...g.loops.values()].map((l) => l.length)) * 13;
    const width = 40 + g.order.length * NODE_W + (g.order.length - 1) * GAP;
    const height = rowY + NODE_H + Math.max(bottomRoom, loopsRoom + 20) + (g.everywhere.length ? 26 : 6);
    const svg = el('svg', {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      class: 'statechart',
      role: 'img',
      'aria-label': `${def.id || 'machine'} state chart${opts.current ? `, current state ${opts.current}` : ''}`,
    });
    const defs = el('defs');
    const marker = el('marker', {
      id: `arrow-${def.id}`,
      viewBox: '0 0 10 10',
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse',
    });
    marker.appendChild(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }));
    defs.appendChild(marker);
    svg.appendChild(defs);

    for (const e of g.edges) {
      const fwd = g.order.indexOf(e.to) > g.order.indexOf(e.from);
      const x1 = x.get(e.from) + NODE_W / 2 + (fwd ? 12 : -12);
      const x2 = x.get(e.to) + NODE_W / 2 + (fwd ? -12 : 12);
      const y = fwd ? rowY : rowY + NODE_H;
      const h = arc(e) * (fwd ? -1 : 1);
      const path = el('path', {
        d: `M ${x1} ${y} C ${x1} ${y + h}, ${x2} ${y + h}, ${x2} ${y}`,
        class: 'edge',
        'marker-end': `url(#arrow-${def.id})`,
      });
      path.appendChild(el('title', {}, e.title));
      svg.appendChild(path);
      svg.appendChild(
        el(
          'text',
          { x: (x1 + x2) / 2, y: y + h * 0.75 + (fwd ? -4 : 12), class: 'edge-label', 'text-anchor': 'middle' },
          e.labels.join(', '),
        ),
      );
    }
    for (const s of g.order) {
      const current = opts.current === s;
      const group = el('g', {
        class: `state${current ? ' current' : ''}${g.finals.includes(s) ? ' final' : ''}`,
        'data-state': s,
      });
      group.appendChild(el('rect', { x: x.get(s), y: rowY, width: NODE_W, height: NODE_H, rx: 10 }));
      const count = opts.counts && opts.counts[s] !== undefined ? ` ${opts.counts[s]}` : '';
      group.appendChild(
        el(
          'text',
          { x: x.get(s) + NODE_W / 2, y: rowY + NODE_H / 2 + 5, 'text-anchor': 'middle', class: 'state-label' },
          s + count,
        ),
      );
      svg.appendChild(group);
      (g.loops.get(s) || []).forEach((ev, i) => {
        svg.appendChild(
          el(
            'text',
            { x: x.get(s) + NODE_W / 2, y: rowY + NODE_H + 16 + i * 13, class: 'loop-label', 'text-anchor': 'middle' },
            `↻ ${ev}`,
          ),
        );
      });
    }
    if (g.order[0]) {
      const x0 = x.get(g.order[0]);
      svg.appendChild(el('circle', { cx: x0 - 10, cy: rowY + NODE_H / 2, r: 5, class: 'initial' }));
    }
    if (g.everywhere.length) {
      svg.appendChild(
        el(
          'text',
          { x: 20, y: height - 8, class: 'note' },
          `In every state: ${g.everywhere.join(', ')} (counted, state unchanged)`,
        ),
      );
    }
    return svg;
  }

  /**
   * Updates a chart drawn by drawStateChart in place (the highlighted state, the counts): a chart is drawn once and
   * follows the run without being rebuilt.
   */
  function updateStateChart(svg, options) {
    const opts = options || {};
    for (const group of svg.querySelectorAll('g.state')) {
      const s = group.getAttribute('data-state');
      group.classList.toggle('current', opts.current === s);
      const label = group.querySelector('text.state-label');
      const count = opts.counts && opts.counts[s] !== undefined ? ` ${opts.counts[s]}` : '';
      if (label && label.textContent !== s + count) label.textContent = s + count;
    }
    const aria = svg.getAttribute('aria-label').replace(/, current state .*$/, '');
    svg.setAttribute('aria-label', `${aria}${opts.current ? `, current state ${opts.current}` : ''}`);
  }

  /** A chart that draws itself once and then only updates (for pages that refresh every few seconds). */
  function stateChart(def, options) {
    const svg = drawStateChart(def, options);
    return { svg, update: (o) => updateStateChart(svg, o) };
  }

  window.swfCharts = { drawStateChart, updateStateChart, stateChart, graphOf };
})();
