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

  function table(columns, rows, empty) {
    if (rows.length === 0) return h('p', { class: 'empty' }, empty);
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
              { title: 'Finished', cell: (r) => (r.finished ? '✓' : '') },
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
    const charts = h('div', { class: 'charts' });
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

    const render = (s, counts) => {
      phase.replaceChildren(
        badge(s.phase),
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
      charts.replaceChildren(
        h(
          'figure',
          {},
          window.swfCharts.drawStateChart(machines.definitions.run, { current: s.phase }),
          h('figcaption', {}, 'Run machine — current phase highlighted'),
        ),
        h(
          'figure',
          {},
          window.swfCharts.drawStateChart(machines.definitions.slice, { counts }),
          h('figcaption', {}, 'Slice machine — slices of this run in each state'),
        ),
      );
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
    // (GET /api/runs/{run}/timeline/?position=).
    const timelineView = (v) => {
      const c = v.run_state;
      return h(
        'div',
        { class: 'timeline-view' },
        h(
          'p',
          {},
          badge(c.phase),
          ' ',
          h('span', { class: 'stamp' }, `${c.state}${c.substate ? ` / ${c.substate}` : ''}`),
          ` · position ${fmt(v.position)} · ${fmtTime(v.time)} · ${fmt(v.events)} events of the run folded`,
        ),
        h(
          'p',
          { class: 'muted', id: 'timeline-counts' },
          `STFs ${fmt(v.stf_files)} · samples ${fmt(v.tf_samples)} · slices created ${fmt(c.slices_created)}: ` +
            `queued ${fmt(v.slices.queued)}, processing ${fmt(v.slices.processing)}, ` +
            `completed ${fmt(v.slices.completed)}, failed ${fmt(v.slices.failed)}` +
            (v.last_message ? ` · last: ${v.last_message.type} from ${v.last_message.sender || '—'}` : ''),
        ),
        h(
          'div',
          { class: 'charts' },
          h(
            'figure',
            {},
            window.swfCharts.drawStateChart(machines.definitions.run, { current: c.phase }),
            h('figcaption', {}, 'Run machine at this point'),
          ),
          h(
            'figure',
            {},
            window.swfCharts.drawStateChart(machines.definitions.slice, { counts: v.slices }),
            h('figcaption', {}, 'Slices in each state at this point'),
          ),
        ),
      );
    };
    const loadTimeline = async () => {
      let end;
      try {
        end = await api(`/api/runs/${run}/timeline/`);
      } catch (err) {
        timeline.replaceChildren(h('p', { class: 'empty' }, `No timeline: ${err.message || err}`));
        return;
      }
      const slider = h('input', {
        type: 'range',
        id: 'timeline-slider',
        min: String(end.first_position),
        max: String(end.last_position),
        value: String(end.last_position),
        step: '1',
        'aria-label': 'log position',
      });
      const label = h(
        'span',
        { class: 'muted', id: 'timeline-position' },
        `position ${fmt(end.last_position)} (the end)`,
      );
      const view = h('div', { id: 'timeline-at' }, timelineView(end));
      let asked = 0;
      const show = throttle(async () => {
        const position = slider.value;
        const ask = ++asked;
        label.textContent = `position ${fmt(Number(position))}…`;
        try {
          const v = await api(`/api/runs/${run}/timeline/?position=${position}`);
          if (ask !== asked) return; // a later move already asked for another point
          label.textContent = `position ${fmt(Number(position))}`;
          view.replaceChildren(timelineView(v));
        } catch (err) {
          showError(err);
        }
      }, 250);
      slider.addEventListener('input', show);
      timeline.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          `Drag to see the run at any of its events, positions ${fmt(end.first_position)}–${fmt(end.last_position)}.`,
        ),
        h('div', { class: 'timeline-control' }, slider, ' ', label),
        view,
      );
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
            { title: 'Phase', cell: (r) => badge(r.phase) },
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

  // ---- routing ---------------------------------------------------------------------------------------

  async function route() {
    for (const f of teardown.splice(0)) f();
    live.className = 'live off';
    live.textContent = '○ offline';
    clearError();
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    const [kind, ...rest] = hash.split('/');
    const key = rest.join('/');
    if (kind === 'runs' && key) await runPage(key);
    else if (kind === 'executions' && key) await executionPage(key);
    else await home();
  }

  window.addEventListener('hashchange', () => {
    route().catch(showError);
  });
  route().catch(showError);
})();
