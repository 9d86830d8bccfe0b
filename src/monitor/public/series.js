/*
 * A run's time series (GET /api/runs/{run}/series/) drawn with uPlot, served by the monitor from the installed
 * package (/vendor/uPlot.iife.min.js): slices completed, failed and retried per interval, the queue (queued,
 * processing = workers busy), STFs and samples so far, and the slice latency histogram. Phase changes are dashed
 * lines on every time chart. Charts take their container's width and follow it when the window is resized.
 */
'use strict';

(function () {
  const COLORS = {
    completed: '#2f8f4e',
    failed: '#c0392b',
    retried: '#e67e22',
    queued: '#7f8fa0',
    processing: '#e0a526',
    stfs: '#1f4e79',
    samples: '#8e44ad',
    latency: '#1f4e79',
    mark: '#555',
  };
  const HEIGHT = 190;

  const fmtMs = (ms) =>
    ms >= 3_600_000
      ? `${ms / 3_600_000} h`
      : ms >= 60_000
        ? `${ms / 60_000} min`
        : ms >= 1000
          ? `${ms / 1000} s`
          : `${ms} ms`;

  /** Dashed vertical lines at the run's phase changes, labelled at the top. */
  function markPlugin(getMarks) {
    return {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx;
            const { top, height } = u.bbox;
            ctx.save();
            ctx.strokeStyle = COLORS.mark;
            ctx.fillStyle = COLORS.mark;
            ctx.setLineDash([4, 4]);
            ctx.lineWidth = window.devicePixelRatio || 1;
            ctx.font = `${10 * (window.devicePixelRatio || 1)}px system-ui, sans-serif`;
            for (const m of getMarks()) {
              const x = Math.round(u.valToPos(m.t, 'x', true));
              if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) continue;
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + height);
              ctx.stroke();
              ctx.fillText(m.phase, x + 3, top + 10 * (window.devicePixelRatio || 1));
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  /** The histogram's bins from the first to the last that holds a slice (all of them while none does). */
  function latencyData(h) {
    let lo = h.counts.findIndex((c) => c > 0);
    let hi = h.counts.length - 1;
    while (hi > 0 && h.counts[hi] === 0) hi--;
    if (lo < 0) lo = 0;
    const xs = [];
    for (let i = lo; i <= hi; i++) xs.push(i);
    return [xs, xs.map((i) => h.counts[i])];
  }

  function timeChart(title, series, getMarks, width) {
    return {
      title,
      width,
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [
        {},
        ...series.map(([label, color, fill]) => ({
          label,
          stroke: color,
          width: 1.5,
          fill: fill ? `${color}33` : undefined,
        })),
      ],
      axes: [{}, { size: 52 }],
      legend: { live: true },
      plugins: [markPlugin(getMarks)],
    };
  }

  /**
   * Mounts the charts for `run` in `container`. Returns `refresh()` (fetches and redraws; resolves to the series)
   * and `destroy()`.
   */
  function mount(container, run, api) {
    if (typeof window.uPlot !== 'function') {
      container.textContent = 'The chart library did not load (/vendor/uPlot.iife.min.js).';
      return { refresh: async () => undefined, destroy() {} };
    }
    let marks = [];
    const getMarks = () => marks;
    const boxes = {
      slices: document.createElement('div'),
      queue: document.createElement('div'),
      files: document.createElement('div'),
      latency: document.createElement('div'),
    };
    for (const [k, b] of Object.entries(boxes)) {
      b.className = 'series-chart';
      b.id = `series-${k}`;
    }
    const note = document.createElement('p');
    note.className = 'muted';
    note.id = 'series-note';
    container.replaceChildren(note, ...Object.values(boxes));
    // a chart box has no padding: its width is what a chart may take
    const widthOf = () => Math.max(200, Math.floor(boxes.slices.clientWidth));
    let plots;

    const make = (s) => {
      const w = widthOf();
      const x = s.t;
      const binLabels = s.latency.edges_ms.map((e, i) =>
        i + 1 < s.latency.edges_ms.length ? `<${fmtMs(s.latency.edges_ms[i + 1])}` : `≥${fmtMs(e)}`,
      );
      plots = {
        slices: new window.uPlot(
          timeChart(
            `Slices per ${s.step_seconds} s`,
            [
              ['completed', COLORS.completed],
              ['failed', COLORS.failed],
              ['retried', COLORS.retried],
            ],
            getMarks,
            w,
          ),
          [x, s.slices_completed, s.slices_failed, s.slices_retried],
          boxes.slices,
        ),
        queue: new window.uPlot(
          timeChart(
            'Queue depth',
            [
              ['queued', COLORS.queued, true],
              ['processing (workers busy)', COLORS.processing, true],
            ],
            getMarks,
            w,
          ),
          [x, s.slices_queued, s.slices_processing],
          boxes.queue,
        ),
        files: new window.uPlot(
          timeChart(
            'STFs and TF samples so far',
            [
              ['STFs', COLORS.stfs],
              ['samples', COLORS.samples],
            ],
            getMarks,
            w,
          ),
          [x, s.stf_files, s.samples],
          boxes.files,
        ),
        latency: new window.uPlot(
          {
            title: `Slice latency, queued → done (${s.latency.count.toLocaleString('en-US')} slices)`,
            width: w,
            height: HEIGHT,
            scales: { x: { time: false } },
            series: [
              { label: 'bin', value: (_u, v) => (v === null || v === undefined ? '—' : binLabels[v] || '') },
              {
                label: 'slices',
                stroke: COLORS.latency,
                fill: `${COLORS.latency}88`,
                paths: window.uPlot.paths.bars({ size: [0.8, 60] }),
                points: { show: false },
              },
            ],
            axes: [
              {
                values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? binLabels[v] || '' : '')),
                incrs: [1, 2, 5, 10],
                space: 56,
              },
              { size: 52 },
            ],
          },
          latencyData(s.latency),
          boxes.latency,
        ),
      };
    };

    const describe = (s) => {
      const p = s.latency;
      const pct = (v) => (v === null ? '—' : `< ${fmtMs(v)}`);
      note.textContent =
        s.t.length === 0
          ? 'No samples yet: the series starts with the run.'
          : `${s.t.length} intervals of ${s.step_seconds} s (workflow clock) · latency p50 ${pct(p.p50_ms)}, p90 ${pct(p.p90_ms)}, p99 ${pct(p.p99_ms)}` +
            (s.finished ? ' · finished' : ' · live');
    };

    const refresh = async () => {
      const s = await api(`/api/runs/${run}/series/`);
      marks = s.marks.map((m) => ({ t: Date.parse(m.time) / 1000, phase: m.phase }));
      describe(s);
      if (!plots) make(s);
      else {
        plots.slices.setData([s.t, s.slices_completed, s.slices_failed, s.slices_retried]);
        plots.queue.setData([s.t, s.slices_queued, s.slices_processing]);
        plots.files.setData([s.t, s.stf_files, s.samples]);
        plots.latency.setData(latencyData(s.latency));
      }
      return s;
    };

    const onResize = () => {
      if (!plots) return;
      const w = widthOf();
      for (const p of Object.values(plots)) p.setSize({ width: w, height: HEIGHT });
    };
    window.addEventListener('resize', onResize);
    return {
      refresh,
      destroy() {
        window.removeEventListener('resize', onResize);
        if (plots) for (const p of Object.values(plots)) p.destroy();
      },
    };
  }

  window.swfSeries = { mount };
})();
