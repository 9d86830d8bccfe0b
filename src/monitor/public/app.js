/*
 * The monitor's page: executions and runs (newest first), a run's RunState, slice counts, state charts and message
 * feed, an execution's overview. Plain DOM, every asset local, live over Server-Sent Events. Text from the log is
 * only ever set with textContent.
 */
'use strict';

(function () {
  const app = document.getElementById('app');
  const banner = document.getElementById('banner');
  const live = document.getElementById('live');
  let teardown = [];

  // ---- small helpers ------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  class HttpError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' } });
    } catch {
      throw new HttpError(0, 'the monitor did not answer (is swf monitor still running?)');
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new HttpError(res.status, body.detail || `HTTP ${res.status}`);
    return body;
  }

  function showError(err) {
    banner.hidden = false;
    banner.textContent = `⚠ ${err.message}`;
  }
  function clearError() {
    banner.hidden = true;
    banner.textContent = '';
  }

  const fmtTime = (t) => (typeof t === 'string' ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
  const fmt = (n) =>
    typeof n === 'number' ? n.toLocaleString('en-US') : n === null || n === undefined ? '—' : String(n);
  const badge = (text, kind) => h('span', { class: `badge ${kind || String(text).toLowerCase()}` }, String(text));

  /**
   * A run's phase as the operator should read it: `completed` is the end of data taking, not of the run; until the
   * run is finished (every slice final) it shows with the slices still to process.
   */
  function phaseBadge(r) {
    if (!r || !r.phase) return '—';
    const pending = (r.slices_queued || 0) + (r.slices_processing || 0);
    if (r.phase !== 'completed' || r.finished || pending === 0) return badge(r.phase);
    return h(
      'span',
      { class: 'phase-pending' },
      badge(r.phase),
      ' ',
      h(
        'span',
        { class: 'pending', title: 'data taking ended; the queue is draining' },
        `processing ${fmt(pending)} slices`,
      ),
    );
  }

  /** Calls fn at most once per `ms`, trailing call kept. */
  function throttle(fn, ms) {
    let timer = null;
    let pending = false;
    return () => {
      if (timer) {
        pending = true;
        return;
      }
      fn();
      timer = setTimeout(() => {
        timer = null;
        if (pending) {
          pending = false;
          fn();
        }
      }, ms);
    };
  }

  /** An EventSource that marks the live indicator; closed when the view changes. */
  function openFeed(query, onMessage) {
    const source = new EventSource(`/api/messages/stream/?${query}`);
    source.addEventListener('connected', () => {
      live.className = 'live on';
      live.textContent = '● live';
    });
    source.onerror = () => {
      live.className = 'live off';
      live.textContent = '○ reconnecting…';
    };
    source.onmessage = onMessage;
    for (const t of [
      'run_imminent',
      'start_run',
      'stf_gen',
      'pause_run',
      'resume_run',
      'end_run',
      'stf_ready',
      'tf_file_registered',
      'slice',
      'slice_result',
      'run_imminent_worker',
    ]) {
      source.addEventListener(t, onMessage);
    }
    teardown.push(() => source.close());
    return source;
  }

  function every(ms, fn) {
    const id = setInterval(fn, ms);
    teardown.push(() => clearInterval(id));
  }

  /** A table in a box of its own that scrolls sideways on a narrow screen (the page itself never does). */
  function table(columns, rows, empty) {
    if (rows.length === 0) return h('p', { class: 'empty' }, empty);
    return h('div', { class: 'scroll' }, bareTable(columns, rows));
  }

  function bareTable(columns, rows) {
    return h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', {}, c.title)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((r) =>
          h(
            'tr',
            {},
            columns.map((c) => h('td', { class: c.cls }, c.cell(r))),
          ),
        ),
      ),
    );
  }

  // ---- home: executions and runs -------------------------------------------------------------------

  async function home() {
    const section = h(
      'section',
      {},
      h('h1', {}, 'Executions & runs'),
      h('p', { class: 'muted' }, 'Newest first; updates live.'),
    );
    const execBox = h('div', {});
    const runBox = h('div', {});
    section.append(h('h2', {}, 'Workflow executions'), execBox, h('h2', {}, 'Runs'), runBox);
    app.replaceChildren(section);

    const render = async () => {
      try {
        const [executions, runs] = await Promise.all([
          api('/api/workflow-executions/?limit=50'),
          api('/api/runs/?limit=100'),
        ]);
        clearError();
        execBox.replaceChildren(
          table(
            [
              {
                title: 'Execution',
                cell: (e) => h('a', { href: `#/executions/${encodeURIComponent(e.execution_id)}` }, e.execution_id),
              },
              { title: 'Status', cell: (e) => badge(e.status) },
              { title: 'Namespace', cell: (e) => e.namespace },
              { title: 'By', cell: (e) => e.executed_by },
              { title: 'Started', cell: (e) => fmtTime(e.start_time) },
              { title: 'Ended', cell: (e) => fmtTime(e.end_time) },
              {
                title: 'Runs',
                cell: (e) =>
                  h(
                    'span',
                    {},
                    e.run_numbers.map((n) => h('a', { href: `#/runs/${n}`, class: 'runlink' }, String(n))),
                  ),
              },
            ],
            executions.results,
            'No workflow executions yet. Start one with `swf run` against this store; it appears here as it starts.',
          ),
        );
        runBox.replaceChildren(
          table(
            [
              { title: 'Run', cell: (r) => h('a', { href: `#/runs/${r.run_number}` }, String(r.run_number)) },
              { title: 'Phase', cell: (r) => (r.phase ? badge(r.phase) : '—') },
              { title: 'Finished', cell: (r) => (r.finished ? '✓' : r.phase === 'completed' ? 'draining' : '') },
              { title: 'Execution', cell: (r) => r.execution_id || '—' },
              { title: 'STFs', cls: 'num', cell: (r) => fmt(r.stf_file_count) },
              { title: 'Started', cell: (r) => fmtTime(r.start_time) },
              { title: 'Ended', cell: (r) => fmtTime(r.end_time) },
            ],
            runs.results,
            'No runs yet.',
          ),
        );
      } catch (err) {
        showError(err);
      }
    };
    await render();
    const refresh = throttle(render, 700);
    openFeed('msg_types=run_imminent,start_run,pause_run,resume_run,end_run', refresh);
    every(5000, render);
  }

  // ---- a run ---------------------------------------------------------------------------------------

  const COUNTERS = [
    ['stf_files', 'STF files'],
    ['stf_samples_received', 'TF samples'],
    ['slices_created', 'Slices created'],
    ['slices_queued', 'Queued'],
    ['slices_processing', 'Processing'],
    ['slices_completed', 'Completed'],
    ['slices_failed', 'Failed (final)'],
    ['slices_retried', 'Retries'],
    ['active_worker_count', 'Active workers'],
    ['target_worker_count', 'Target workers'],
  ];

  async function runPage(run) {
    if (!/^\d{1,15}$/.test(run)) {
      app.replaceChildren(h('p', { class: 'empty' }, `“${run}” is not a run number.`));
      return;
    }
    const title = h('h1', {}, `Run ${run}`);
    const phase = h('div', { class: 'phase', id: 'run-phase' }, '…');
    const meta = h('p', { class: 'muted' });
    const counters = h('div', { class: 'counters', id: 'counters' });
    const bar = h('div', { class: 'bar', id: 'slice-bar' });
    const charts = h('div', { class: 'charts', id: 'state-charts' });
    const failedBox = h('div', { id: 'failed-list' });
    const seriesBox = h('div', { class: 'series', id: 'series' });
    const feedList = h('ol', { class: 'feed', id: 'feed' });
    const feedNote = h('p', { class: 'muted' }, 'Messages of this run, newest first (the last 100).');
    const timeline = h(
      'div',
      { class: 'timeline', id: 'timeline' },
      h('p', { class: 'muted' }, 'Loading the timeline…'),
    );
    app.replaceChildren(
      h(
        'section',
        {},
        h('p', {}, h('a', { href: '#/' }, '← executions & runs')),
        title,
        phase,
        meta,
        h('h2', {}, 'RunState'),
        counters,
        h('h2', {}, 'Slices by status'),
        bar,
        h(
          'p',
          { class: 'slice-links' },
          h('a', { href: `#/slices?run_number=${run}&status=failed`, id: 'failed-slices' }, 'failed slices'),
          ' · ',
          h('a', { href: `#/slices?run_number=${run}` }, 'all slices of this run'),
          ' · ',
          h('a', { href: `#/logs?run_number=${run}` }, 'logs of this run'),
        ),
        failedBox,
        h('h2', {}, 'Over time'),
        seriesBox,
        h('h2', {}, 'State charts'),
        charts,
        h('h2', {}, 'Timeline'),
        timeline,
        h('h2', {}, 'Messages'),
        feedNote,
        feedList,
      ),
    );

    let state;
    try {
      state = await api(`/api/run-states/${run}/`);
      clearError();
    } catch (err) {
      if (err.status === 404) {
        app.replaceChildren(
          h(
            'section',
            {},
            h('p', {}, h('a', { href: '#/' }, '← executions & runs')),
            h('h1', {}, `Run ${run}`),
            h(
              'p',
              { class: 'empty' },
              `There is no run ${run} in this store (yet). The page does not follow it; check the run number.`,
            ),
          ),
        );
        return;
      }
      showError(err);
      return;
    }

    let machines;
    try {
      machines = await api(`/api/machines/?execution_id=${encodeURIComponent(state.execution_id || '')}`);
    } catch {
      machines = await api('/api/machines/');
    }

    // The state charts: drawn once, then updated in place on each refresh.
    const runChart = window.swfCharts.stateChart(machines.definitions.run, { current: state.phase });
    const sliceChart = window.swfCharts.stateChart(machines.definitions.slice, { counts: {} });
    charts.replaceChildren(
      h('figure', {}, runChart.svg, h('figcaption', {}, 'Run machine — current phase highlighted')),
      h('figure', {}, sliceChart.svg, h('figcaption', {}, 'Slice machine — slices of this run in each state')),
    );

    let failedShown = -1;
    const renderFailed = async (n) => {
      if (n === failedShown) return;
      failedShown = n;
      if (!n) {
        failedBox.replaceChildren();
        return;
      }
      const page = await api(`/api/tf-slices/?run_number=${run}&status=failed&limit=10`);
      failedBox.replaceChildren(
        h('p', { class: 'muted' }, `Failed for good (${fmt(page.count)}${page.count > 10 ? ', the newest 10' : ''}):`),
        h(
          'ul',
          { class: 'failed-slices' },
          page.results.map((x) =>
            h(
              'li',
              {},
              h('a', { href: `#/slice/${encodeURIComponent(x.tf_filename)}`, class: 'slice-link' }, x.tf_filename),
              ' ',
              h('span', { class: 'muted' }, `attempt ${x.attempt} · ${x.last_error || 'failed'}`),
            ),
          ),
        ),
      );
    };

    const render = (s, counts) => {
      phase.replaceChildren(
        phaseBadge(s),
        ' ',
        h('span', { class: 'stamp' }, `${s.state}${s.substate ? ` / ${s.substate}` : ''}`),
        s.finished ? h('span', { class: 'finished' }, ' ✓ finished') : '',
      );
      meta.replaceChildren(
        'Execution ',
        s.execution_id ? h('a', { href: `#/executions/${encodeURIComponent(s.execution_id)}` }, s.execution_id) : '—',
        ` · namespace ${s.namespace || '—'} · phase since ${fmtTime(s.state_changed_at)} · updated ${fmtTime(s.updated_at)}`,
      );
      counters.replaceChildren(
        ...COUNTERS.map(([key, label]) =>
          h(
            'div',
            { class: 'counter', dataset: { counter: key } },
            h('div', { class: 'value' }, fmt(s[key])),
            h('div', { class: 'label' }, label),
          ),
        ),
      );
      const total = counts.total || 0;
      bar.replaceChildren(
        ...(total === 0
          ? [h('p', { class: 'empty' }, 'No slices yet: they appear as FastMon registers TF samples.')]
          : ['queued', 'processing', 'completed', 'failed']
              .filter((st) => counts[st] > 0)
              .map((st) => {
                const seg = h(
                  'div',
                  { class: `seg ${st}`, title: `${st}: ${counts[st] || 0}`, dataset: { status: st } },
                  counts[st] ? `${st} ${fmt(counts[st])}` : '',
                );
                seg.style.flexGrow = String(counts[st] || 0); // CSSOM, which the page's CSP allows (style attributes it does not)
                return seg;
              })),
      );
      runChart.update({ current: s.phase });
      sliceChart.update({ counts });
      renderFailed(s.slices_failed || 0).catch(showError);
    };

    const series = window.swfSeries.mount(seriesBox, run, api);
    teardown.push(() => series.destroy());
    const refresh = async () => {
      try {
        const [s, counts] = await Promise.all([
          api(`/api/run-states/${run}/`),
          api(`/api/tf-slices/counts/?run_number=${run}`),
          series.refresh(),
        ]);
        state = s;
        clearError();
        render(s, counts);
      } catch (err) {
        showError(err);
      }
    };
    await refresh();

    // The timeline: the run as it stood at any event of the log, folded by the server from the log
    // (GET /api/runs/{run}/timeline/?position=). Under the slider, a time axis (the workflow clock, interpolated
    // between the run's phase marks) and the marks themselves; a play button walks the run from where the slider is.
    const MARK_LABELS = {
      imminent: 'imminent',
      physics: 'physics',
      standby: 'pause',
      completed: 'end of data taking',
      finished: 'finished',
    };
    const tlPhase = h('p', { id: 'timeline-phase' });
    const tlCounts = h('p', { class: 'muted', id: 'timeline-counts' });
    const tlRunChart = window.swfCharts.stateChart(machines.definitions.run, { current: state.phase });
    const tlSliceChart = window.swfCharts.stateChart(machines.definitions.slice, { counts: {} });
    const tlView = h(
      'div',
      { class: 'timeline-view', id: 'timeline-at' },
      tlPhase,
      tlCounts,
      h(
        'div',
        { class: 'charts' },
        h('figure', {}, tlRunChart.svg, h('figcaption', {}, 'Run machine at this point')),
        h('figure', {}, tlSliceChart.svg, h('figcaption', {}, 'Slices in each state at this point')),
      ),
    );
    const showView = (v) => {
      const c = v.run_state;
      tlPhase.replaceChildren(
        phaseBadge({ ...c, slices_queued: v.slices.queued, slices_processing: v.slices.processing }),
        ' ',
        h('span', { class: 'stamp' }, `${c.state}${c.substate ? ` / ${c.substate}` : ''}`),
        ` · position ${fmt(v.position)} · ${fmtTime(v.time)} · ${fmt(v.events)} events of the run folded`,
      );
      tlCounts.textContent =
        `STFs ${fmt(v.stf_files)} · samples ${fmt(v.tf_samples)} · slices created ${fmt(c.slices_created)}: ` +
        `queued ${fmt(v.slices.queued)}, processing ${fmt(v.slices.processing)}, ` +
        `completed ${fmt(v.slices.completed)}, failed ${fmt(v.slices.failed)}` +
        (v.last_message ? ` · last: ${v.last_message.type} from ${v.last_message.sender || '—'}` : '');
      tlRunChart.update({ current: c.phase });
      tlSliceChart.update({ counts: v.slices });
    };

    /** Elapsed workflow time as "45 s", "12 min 5 s", "2 h 3 min". */
    const elapsed = (ms) => {
      const sec = Math.max(0, Math.round(ms / 1000));
      if (sec < 60) return `${sec} s`;
      if (sec < 3600) return `${Math.floor(sec / 60)} min${sec % 60 ? ` ${sec % 60} s` : ''}`;
      return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
    };

    const loadTimeline = async () => {
      let end;
      let marks = [];
      try {
        end = await api(`/api/runs/${run}/timeline/`);
        marks = (await api(`/api/runs/${run}/series/?points=1`)).marks || [];
      } catch (err) {
        timeline.replaceChildren(h('p', { class: 'empty' }, `No timeline: ${err.message || err}`));
        return;
      }
      const first = Number(end.first_position);
      const last = Number(end.last_position);
      const span = Math.max(1, last - first);
      // (position, time) anchors: the phase marks, the run's end; time between them is interpolated.
      const anchors = marks
        .map((m) => ({ position: Number(m.position), t: Date.parse(m.time) }))
        .filter((a) => Number.isFinite(a.t));
      if (end.time) anchors.push({ position: last, t: Date.parse(end.time) });
      anchors.sort((a, b) => a.position - b.position);
      const t0 = anchors.length ? anchors[0].t : NaN;
      const timeAt = (p) => {
        if (anchors.length === 0) return NaN;
        if (p <= anchors[0].position) return anchors[0].t;
        for (let i = 1; i < anchors.length; i++) {
          const a = anchors[i - 1];
          const b = anchors[i];
          if (p <= b.position)
            return b.position === a.position ? b.t : a.t + ((p - a.position) / (b.position - a.position)) * (b.t - a.t);
        }
        return anchors[anchors.length - 1].t;
      };
      const pct = (p) => `${((Math.min(last, Math.max(first, p)) - first) / span) * 100}%`;

      const slider = h('input', {
        type: 'range',
        id: 'timeline-slider',
        min: String(first),
        max: String(last),
        value: String(last),
        step: '1',
        'aria-label': 'log position',
      });
      const label = h('span', { class: 'muted', id: 'timeline-position' }, `position ${fmt(last)} (the end)`);
      const when = h('span', { class: 'muted', id: 'timeline-when' });
      const play = h('button', { type: 'button', id: 'timeline-play', 'aria-label': 'play the run' }, '▶ Play');

      // Phase marks, above the track; each one's short label and, on hover, its time.
      const markRow = h('div', { class: 'timeline-marks', id: 'timeline-marks' });
      for (const m of marks) {
        const name = MARK_LABELS[m.phase] || m.phase;
        const mark = h(
          'button',
          {
            type: 'button',
            class: `timeline-mark mark-${m.phase}`,
            title: `${name} at ${fmtTime(m.time)} (position ${fmt(m.position)})`,
            dataset: { phase: m.phase, position: String(m.position) },
          },
          name,
        );
        const at = (Number(m.position) - first) / span;
        mark.style.left = pct(Number(m.position));
        // near an end a label is aligned to stay on the track; neighbours alternate rows so none hides another
        if (at > 0.85) mark.classList.add('align-end');
        else if (at < 0.15) mark.classList.add('align-start');
        if (markRow.children.length % 2 === 1) mark.classList.add('row-2');
        mark.addEventListener('click', () => {
          slider.value = String(m.position);
          show();
        });
        markRow.appendChild(mark);
      }
      // The time axis: ticks at even steps of the slider, labelled with the workflow time since the first mark.
      const axis = h('div', { class: 'timeline-axis', id: 'timeline-axis' });
      const ticks = timeline.clientWidth < 560 ? 3 : 6;
      for (let i = 0; i <= ticks; i++) {
        const p = first + (span * i) / ticks;
        const t = timeAt(p);
        const tick = h(
          'span',
          {
            class: `timeline-tick${i === 0 ? ' first' : i === ticks ? ' last' : ''}`,
            title: fmtTime(Number.isFinite(t) ? new Date(t).toISOString() : null),
          },
          Number.isFinite(t) ? elapsed(t - t0) : `#${fmt(Math.round(p))}`,
        );
        tick.style.left = pct(p);
        axis.appendChild(tick);
      }

      let asked = 0;
      const show = throttle(async () => {
        const position = slider.value;
        const ask = ++asked;
        const t = timeAt(Number(position));
        when.textContent = Number.isFinite(t) ? ` · ${elapsed(t - t0)} into the run` : '';
        label.textContent = `position ${fmt(Number(position))}…`;
        try {
          const v = await api(`/api/runs/${run}/timeline/?position=${position}`);
          if (ask !== asked) return; // a later move already asked for another point
          label.textContent = `position ${fmt(Number(position))}`;
          showView(v);
        } catch (err) {
          showError(err);
        }
      }, 250);
      slider.addEventListener('input', show);

      // Play: about 60 steps from the slider's point to the end, one every 250 ms (each a fold on the server).
      let player = null;
      const stopPlay = () => {
        if (player) clearInterval(player);
        player = null;
        play.textContent = '▶ Play';
        play.setAttribute('aria-label', 'play the run');
      };
      play.addEventListener('click', () => {
        if (player) {
          stopPlay();
          return;
        }
        if (Number(slider.value) >= last) slider.value = String(first);
        const step = Math.max(1, Math.ceil(span / 60));
        play.textContent = '❚❚ Pause';
        play.setAttribute('aria-label', 'pause');
        player = setInterval(() => {
          const next = Math.min(last, Number(slider.value) + step);
          slider.value = String(next);
          show();
          if (next >= last) stopPlay();
        }, 250);
      });
      teardown.push(stopPlay);

      timeline.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          `Drag, play, or pick a mark to see the run at any of its events, positions ${fmt(first)}–${fmt(last)}.`,
        ),
        h('div', { class: 'timeline-control' }, play, h('div', { class: 'timeline-track' }, markRow, slider, axis)),
        h('p', {}, label, when),
        tlView,
      );
      showView(end);
    };
    void loadTimeline();

    // The feed: the newest stored messages, then live from the last of them (no gap, no duplicate).
    const addMessage = (m) => {
      const li = h(
        'li',
        { class: `msg ${m.msg_type}` },
        h('span', { class: 'pos' }, `#${m.position}`),
        ' ',
        h('span', { class: 'type' }, m.msg_type),
        ' ',
        h('span', { class: 'time' }, fmtTime(m.created_at || m.sent_at)),
        ' ',
        h('span', { class: 'sender' }, m.sender || m.sender_agent || ''),
        ' ',
        h('span', { class: 'detail' }, summary(m)),
      );
      feedList.prepend(li);
      while (feedList.children.length > 100) feedList.lastElementChild.remove();
    };
    let newest = 0;
    try {
      const page = await api(`/api/workflow-messages/?run_number=${run}&limit=50`);
      for (const m of page.results.slice().reverse()) {
        addMessage({ ...m.message_content, position: m.position, sent_at: m.sent_at });
        newest = Math.max(newest, m.position);
      }
    } catch (err) {
      showError(err);
    }
    const pending = [];
    const flush = throttle(() => {
      for (const m of pending.splice(0)) addMessage(m);
    }, 200);
    const refreshSoon = throttle(refresh, 400);
    openFeed(`run_ids=${run}&from=${newest}`, (ev) => {
      try {
        pending.push(JSON.parse(ev.data));
        if (pending.length > 100) pending.splice(0, pending.length - 100);
      } catch {
        return;
      }
      flush();
      refreshSoon();
    });
    // Worker starts and lease expiries are not messages: poll while the run is not finished.
    every(2000, () => {
      if (!state || !state.finished) refresh();
    });
  }

  function summary(m) {
    const c = m.content || {};
    switch (m.msg_type) {
      case 'stf_gen':
      case 'stf_ready':
        return m.filename || '';
      case 'tf_file_registered':
        return `${m.tf_filename} (${m.tf_count} TFs)`;
      case 'slice':
        return `${c.tf_filename} attempt ${c.attempt}`;
      case 'slice_result':
        return `${c.tf_filename} attempt ${c.attempt}: ${c.state}`;
      case 'end_run':
        return `${m.total_stf_files ?? c.total_stf_files ?? ''} STFs${m.content ? ' (to workers)' : ''}`;
      default:
        return m.state ? `${m.state}/${m.substate || ''}` : '';
    }
  }

  // ---- an execution ---------------------------------------------------------------------------------

  async function executionPage(id) {
    const box = h(
      'section',
      {},
      h('p', {}, h('a', { href: '#/' }, '← executions & runs')),
      h('h1', {}, `Execution ${id}`),
    );
    const body = h('div', {});
    box.appendChild(body);
    app.replaceChildren(box);
    const render = async () => {
      let m;
      try {
        m = await api(`/api/workflow-monitor/${encodeURIComponent(id)}/`);
        clearError();
      } catch (err) {
        if (err.status === 404) {
          body.replaceChildren(h('p', { class: 'empty' }, `There is no execution “${id}” in this store.`));
          return;
        }
        showError(err);
        return;
      }
      const exec = await api(`/api/workflow-executions/${encodeURIComponent(id)}/`);
      body.replaceChildren(
        h('div', { class: 'phase' }, badge(m.status), ' phase ', badge(m.phase)),
        h(
          'p',
          { class: 'muted' },
          `${m.namespace} · started ${fmtTime(m.start_time)} · ended ${fmtTime(m.end_time)}${m.duration_seconds !== null ? ` · ${m.duration_seconds.toFixed(1)} s` : ''} · ${m.stf_count} STFs`,
        ),
        h('h2', {}, 'Runs'),
        table(
          [
            { title: 'Run', cell: (r) => h('a', { href: `#/runs/${r.run_number}` }, String(r.run_number)) },
            { title: 'Phase', cell: (r) => phaseBadge(r) },
            { title: 'Created', cls: 'num', cell: (r) => fmt(r.slices_created) },
            { title: 'Completed', cls: 'num', cell: (r) => fmt(r.slices_completed) },
            { title: 'Failed', cls: 'num', cell: (r) => fmt(r.slices_failed) },
          ],
          m.runs,
          'No run yet.',
        ),
        h('h2', {}, 'Lifecycle'),
        table(
          [
            { title: 'Event', cell: (e) => e.type },
            { title: 'Time', cell: (e) => fmtTime(e.time) },
            { title: 'Run', cell: (e) => e.run_id || '—' },
          ],
          m.events,
          'No lifecycle messages yet.',
        ),
        h('h2', {}, 'Errors'),
        table(
          [
            { title: 'Source', cell: (e) => e.source },
            { title: 'Type', cell: (e) => e.type },
            { title: 'Agent', cell: (e) => e.agent || '—' },
            { title: 'Message', cell: (e) => e.message },
            { title: 'Time', cell: (e) => fmtTime(e.time) },
          ],
          m.errors,
          'No errors.',
        ),
        h(
          'details',
          {},
          h('summary', {}, 'parameter_values (the full configuration)'),
          h('pre', {}, JSON.stringify(exec.parameter_values, null, 2)),
        ),
      );
    };
    await render();
    openFeed(`msg_types=run_imminent,start_run,pause_run,resume_run,end_run`, throttle(render, 700));
    every(3000, render);
  }

  // ---- agents, logs, slices -------------------------------------------------------------------------

  /** A filter form whose fields become the page's hash query (so a filtered view is a link). */
  function filterForm(base, fields, values) {
    const form = h('form', { class: 'filters', id: 'filters' });
    for (const f of fields) {
      const input = f.options
        ? h(
            'select',
            { name: f.name, id: `filter-${f.name}` },
            h('option', { value: '' }, 'any'),
            f.options.map((o) => h('option', { value: o, selected: values.get(f.name) === o }, o)),
          )
        : h('input', {
            name: f.name,
            id: `filter-${f.name}`,
            type: f.type || 'text',
            value: values.get(f.name) || '',
            placeholder: f.placeholder || '',
          });
      form.appendChild(h('label', {}, h('span', {}, f.label), input));
    }
    form.appendChild(h('button', { type: 'submit' }, 'Apply'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (String(v).trim() !== '') q.set(k, String(v).trim());
      location.hash = `#/${base}${q.toString() ? `?${q}` : ''}`;
    });
    return form;
  }

  const healthOf = (a) => (a.stale ? 'stale' : a.status === 'EXITED' ? 'exited' : 'ok');

  async function agentsPage() {
    const body = h('div', { id: 'agents' }, h('p', { class: 'muted' }, 'Loading…'));
    app.replaceChildren(
      h(
        'section',
        {},
        h('h1', {}, 'Agents'),
        h(
          'p',
          { class: 'muted' },
          'Every agent that sent a heartbeat. Stale: no heartbeat for 3 minutes of the log’s clock.',
        ),
        body,
      ),
    );
    const render = async () => {
      const rows = await api('/api/systemagents/?status=all');
      body.replaceChildren(
        h(
          'div',
          { class: 'scroll' },
          table(
            [
              { title: 'Name', cell: (a) => a.instance_name },
              { title: 'Kind', cell: (a) => a.agent_type },
              { title: 'State', cell: (a) => `${a.status} / ${a.operational_state}` },
              { title: 'Last heartbeat', cell: (a) => fmtTime(a.last_heartbeat) },
              { title: 'Heartbeats', cls: 'num', cell: (a) => fmt(a.heartbeat_count) },
              { title: 'Messages sent', cls: 'num', cell: (a) => fmt(a.messages_sent) },
              { title: 'Health', cell: (a) => badge(healthOf(a), `health-${healthOf(a)}`) },
              {
                title: 'Logs',
                cell: (a) => h('a', { href: `#/logs?instance_name=${encodeURIComponent(a.instance_name)}` }, 'logs'),
              },
            ],
            rows,
            'No agent has sent a heartbeat yet.',
          ),
        ),
      );
    };
    await render();
    every(5000, () => render().catch(showError));
  }

  async function logsPage(query) {
    const fields = [
      { name: 'level', label: 'Level (minimum)', options: ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] },
      { name: 'instance_name', label: 'Agent', placeholder: 'e.g. fastmon-agent-…' },
      { name: 'run_number', label: 'Run', placeholder: 'e.g. 100010' },
      { name: 'search', label: 'Text', placeholder: 'words in the message' },
    ];
    const body = h('div', { id: 'logs' }, h('p', { class: 'muted' }, 'Loading…'));
    app.replaceChildren(h('section', {}, h('h1', {}, 'Logs'), filterForm('logs', fields, query), body));
    const q = new URLSearchParams();
    for (const f of fields) if (query.get(f.name)) q.set(f.name, query.get(f.name));
    q.set('limit', '200');
    const page = await api(`/api/logs/?${q}`);
    body.replaceChildren(
      h('p', { class: 'muted', id: 'logs-count' }, `${fmt(page.count)} log lines match; the newest 200 shown.`),
      h(
        'div',
        { class: 'scroll' },
        table(
          [
            { title: 'Time', cell: (l) => fmtTime(l.timestamp) },
            { title: 'Level', cell: (l) => badge(l.levelname, `level-${String(l.levelname).toLowerCase()}`) },
            { title: 'Agent', cell: (l) => l.instance_name },
            { title: 'Run', cell: (l) => (l.run_id ? h('a', { href: `#/runs/${l.run_id}` }, l.run_id) : '—') },
            { title: 'Message', cls: 'text', cell: (l) => l.message },
          ],
          page.results,
          'No log lines match.',
        ),
      ),
    );
  }

  async function slicesPage(query) {
    const fields = [
      { name: 'run_number', label: 'Run', placeholder: 'e.g. 100010' },
      { name: 'status', label: 'State', options: ['queued', 'processing', 'completed', 'failed'] },
      { name: 'assigned_worker', label: 'Worker', placeholder: 'e.g. panda-worker-…' },
      { name: 'fastmon_file', label: 'Sample', placeholder: 'a TF sample file name' },
      { name: 'attempt', label: 'Attempt', type: 'number' },
    ];
    const body = h('div', { id: 'slices' }, h('p', { class: 'muted' }, 'Loading…'));
    app.replaceChildren(h('section', {}, h('h1', {}, 'Slices'), filterForm('slices', fields, query), body));
    const q = new URLSearchParams();
    for (const f of fields) if (query.get(f.name)) q.set(f.name, query.get(f.name));
    q.set('limit', '200');
    const page = await api(`/api/tf-slices/?${q}`);
    body.replaceChildren(
      h('p', { class: 'muted', id: 'slices-count' }, `${fmt(page.count)} slices match; the first 200 shown.`),
      h(
        'div',
        { class: 'scroll' },
        table(
          [
            {
              title: 'Slice',
              cell: (x) => h('a', { href: `#/slice/${encodeURIComponent(x.tf_filename)}` }, x.tf_filename),
            },
            { title: 'State', cell: (x) => badge(x.status) },
            { title: 'Attempt', cls: 'num', cell: (x) => fmt(x.attempt) },
            { title: 'Worker', cell: (x) => x.assigned_worker || '—' },
            { title: 'Run', cell: (x) => h('a', { href: `#/runs/${x.run_number}` }, String(x.run_number)) },
            { title: 'Last error', cls: 'text', cell: (x) => x.last_error || '' },
          ],
          page.results,
          'No slices match.',
        ),
      ),
    );
  }

  async function slicePage(name) {
    let x;
    let history;
    try {
      history = await api(`/api/tf-slices/${encodeURIComponent(name)}/events/`);
      x = history.slice;
    } catch (err) {
      app.replaceChildren(h('section', {}, h('h1', {}, 'Slice'), h('p', { class: 'empty' }, err.message)));
      return;
    }
    const rows = [
      ['State', badge(x.status)],
      ['Run', h('a', { href: `#/runs/${x.run_number}` }, String(x.run_number))],
      ['Sample', h('a', { href: `#/slices?fastmon_file=${encodeURIComponent(x.fastmon_file)}` }, x.fastmon_file)],
      ['STF', x.stf_filename],
      ['TFs', `${x.tf_first}–${x.tf_last} (${x.tf_count})`],
      ['Attempt', `${x.attempt} (retries ${x.retries} of ${x.max_retries ?? '—'})`],
      ['Worker', x.assigned_worker || '—'],
      ['Taken', fmtTime(x.assigned_at)],
      ['Done', fmtTime(x.completed_at)],
      ['Last error', x.last_error || '—'],
      ['Created', fmtTime(x.created_at)],
    ];
    app.replaceChildren(
      h(
        'section',
        {},
        h('p', {}, h('a', { href: `#/slices?run_number=${x.run_number}` }, `← slices of run ${x.run_number}`)),
        h('h1', { class: 'wrap' }, x.tf_filename),
        h(
          'table',
          { class: 'fields' },
          h(
            'tbody',
            {},
            rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))),
          ),
        ),
        h('h2', {}, 'Events'),
        h(
          'p',
          { class: 'muted' },
          'Every event of the log naming this slice, oldest first: its slice messages, the workers taking it, their results, expired leases.',
        ),
        h(
          'div',
          { class: 'scroll', id: 'slice-events' },
          table(
            [
              { title: 'Position', cls: 'num', cell: (e) => `#${e.position}` },
              { title: 'Type', cell: (e) => e.type },
              { title: 'Time', cell: (e) => fmtTime(e.time) },
              { title: 'Worker', cell: (e) => e.worker || '—' },
              { title: 'Attempt', cls: 'num', cell: (e) => fmt(e.attempt) },
              { title: 'Outcome', cell: (e) => (e.outcome ? badge(e.outcome, `outcome-${e.outcome}`) : '') },
              { title: 'Detail', cls: 'text', cell: (e) => e.detail || '' },
            ],
            history.events,
            'No events of this slice in the log (a slice written through the REST API has none).',
          ),
        ),
      ),
    );
    const tbl = document.querySelector('#slice-events table');
    if (tbl) tbl.classList.add('slice-events');
  }

  // ---- routing ---------------------------------------------------------------------------------------

  async function route() {
    for (const f of teardown.splice(0)) f();
    live.className = 'live off';
    live.textContent = '○ offline';
    clearError();
    const raw = location.hash.replace(/^#\/?/, '');
    const cut = raw.indexOf('?');
    const query = new URLSearchParams(cut >= 0 ? raw.slice(cut + 1) : '');
    const hash = decodeURIComponent(cut >= 0 ? raw.slice(0, cut) : raw);
    const [kind, ...rest] = hash.split('/');
    const key = rest.join('/');
    if (kind === 'agents') await agentsPage();
    else if (kind === 'logs') await logsPage(query);
    else if (kind === 'slices') await slicesPage(query);
    else if (kind === 'slice' && key) await slicePage(key);
    else if (kind === 'runs' && key) await runPage(key);
    else if (kind === 'executions' && key) await executionPage(key);
    else await home();
  }

  window.addEventListener('hashchange', () => {
    route().catch(showError);
  });
  route().catch(showError);
})();
