/**
 * The operator's pages in headless Chromium (playwright-core + Debian's chromium): a run's charts (uPlot, served
 * by the monitor itself) at 1440 px and at 420 px wide, nothing cut off and no request leaving the machine.
 * Screenshots go to test-artifacts/ (not committed).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';
import { startTestMonitor, type TestMonitor } from './helpers.js';

const CHROMIUM = process.env.SWF_CHROMIUM ?? '/usr/bin/chromium';
// never skipped in CI, where .ci/run installs Chromium: a missing browser there is a failure
const skipReason =
  existsSync(CHROMIUM) || process.env.CI === 'true'
    ? undefined
    : `no Chromium at ${CHROMIUM} (to run it: \`sudo apt-get install -y chromium\`, or set SWF_CHROMIUM to a Chromium binary)`;
if (skipReason) console.warn(`[swf-es] skipped the browser test of the monitor's pages: ${skipReason}`);

const ARTIFACTS = resolve('test-artifacts');

describe.skipIf(skipReason !== undefined)('the operator’s pages in Chromium', () => {
  let m: TestMonitor;
  let run: RunFixture;
  let browser: Browser;
  const errors: string[] = [];

  beforeAll(async () => {
    m = await startTestMonitor();
    run = await appendRunFixture(m.store, { stfCount: 12, tfFilesPerStf: 3, slicesPerSample: 4 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await m?.close();
  });

  async function open(width: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.route(/^(?!http:\/\/(127\.0\.0\.1|localhost))/, (route) => {
      errors.push(`external request: ${route.request().url()}`);
      return route.abort();
    });
    return page;
  }

  /** How far the page's content reaches past the viewport (0: nothing is cut off). */
  const overflow = (page: Page): Promise<number> =>
    page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');

  /** The boxes (by selector) whose content is wider than they are: cut off, or only seen by scrolling. */
  const overflowing = (page: Page, selector: string): Promise<string[]> =>
    page.evaluate<string[]>(
      `[...document.querySelectorAll(${JSON.stringify(selector)})]
        .filter((e) => e.scrollWidth > e.clientWidth + 1)
        .map((e) => e.tagName.toLowerCase() + '#' + e.id + '.' + e.className + ': ' + e.scrollWidth + ' > ' + e.clientWidth)`,
    );

  for (const width of [1440, 420]) {
    it(`the run page at ${width} px: a timeline with time axis, phase marks and play; charts drawn once; nothing cut off`, async () => {
      const page = await open(width);
      await page.goto(`${m.url}/#/runs/${run.runNumber}`);
      const marks = page.locator('#timeline-marks .timeline-mark');
      await expect.poll(() => marks.count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
      const phases = await Promise.all((await marks.all()).map((mark) => mark.getAttribute('data-phase')));
      expect(phases).toEqual(expect.arrayContaining(['physics', 'completed', 'finished']));
      const ticks = await page.locator('#timeline-axis .timeline-tick').allTextContents();
      expect(ticks.length).toBeGreaterThanOrEqual(4);
      expect(ticks[0]).toBe('0 s');
      expect(ticks.at(-1)).toMatch(/^\d+ (s|min|h)/);
      expect(await page.locator('#state-charts svg').count()).toBe(2);
      expect(await page.locator('#timeline-at svg').count()).toBe(2);
      await page.evaluate(
        "document.querySelectorAll('#timeline-at svg').forEach((s) => s.setAttribute('data-drawn', 'once'))",
      );

      // end of data taking: phase completed, and the slices still to process beside it
      await page.locator('#timeline-marks .mark-completed').click();
      await expect
        .poll(() => page.textContent('#timeline-phase'), { timeout: 10_000 })
        .toMatch(/completed\s*processing [1-9][\d,]* slices/);
      expect(await page.locator('#timeline-at g.state.current').getAttribute('data-state')).toBe('completed');
      await page.locator('#timeline-marks .mark-finished').click();
      await expect.poll(() => page.textContent('#timeline-phase'), { timeout: 10_000 }).not.toContain('processing');
      expect(await page.textContent('#run-phase')).toContain('finished');

      // play walks the slider from the first event to the end
      await page.locator('#timeline-marks .mark-physics').first().click();
      const start = Number(await page.inputValue('#timeline-slider'));
      const end = Number(await page.getAttribute('#timeline-slider', 'max'));
      expect(start).toBeLessThan(end);
      await page.click('#timeline-play');
      await expect.poll(async () => Number(await page.inputValue('#timeline-slider'))).toBeGreaterThan(start);
      await expect.poll(async () => Number(await page.inputValue('#timeline-slider')), { timeout: 40_000 }).toBe(end);
      await expect.poll(() => page.textContent('#timeline-play')).toContain('Play');
      // the charts followed the run without being drawn again
      expect(await page.locator('#timeline-at svg[data-drawn="once"]').count()).toBe(2);
      expect(await page.locator('#timeline-at svg').count()).toBe(2);
      expect(await page.locator('#state-charts svg').count()).toBe(2);

      expect(await overflow(page)).toBe(0);
      expect(
        await overflowing(page, 'figure, #timeline, .timeline-track, #run-phase, #counters, #failed-list, #series'),
      ).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-run-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    }, 90_000);

    it(`the home and execution pages at ${width} px: runs and lifecycle, nothing cut off`, async () => {
      const page = await open(width);
      await page.goto(`${m.url}/#/`);
      await expect.poll(() => page.textContent('main'), { timeout: 20_000 }).toContain(run.executionId);
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-home-${width}.png`), fullPage: true });
      await page.locator(`main a[href="#/executions/${run.executionId}"]`).first().click();
      await expect.poll(() => page.textContent('main'), { timeout: 20_000 }).toContain('Lifecycle');
      expect(await page.textContent('main')).toContain('end_run');
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-execution-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);
  }

  for (const width of [1440, 420]) {
    it(`draws the run's time series with uPlot at ${width} px, phase marks and all, nothing cut off`, async () => {
      const page = await open(width);
      await page.goto(`${m.url}/#/runs/${run.runNumber}`);
      await expect.poll(() => page.locator('#series .uplot').count(), { timeout: 20_000 }).toBe(4);
      await expect.poll(() => page.textContent('#series-note'), { timeout: 10_000 }).toContain('finished');
      const titles = await page.locator('#series .u-title').allTextContents();
      expect(titles).toEqual([
        expect.stringMatching(/^Slices per \d+ s$/),
        'Queue depth',
        'STFs and TF samples so far',
        `Slice latency, queued → done (${run.expected.slices_completed} slices)`,
      ]);
      // each chart fits the page: its canvas is no wider than the series box
      const box = (await page.locator('#series').boundingBox())!;
      const canvases = page.locator('#series canvas');
      for (let i = 0; i < (await canvases.count()); i++) {
        const c = (await canvases.nth(i).boundingBox())!;
        expect(c.x + c.width).toBeLessThanOrEqual(box.x + box.width + 1);
      }
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-series-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);
  }

  it('lists the agents with kind, state, last heartbeat, messages sent and a health badge', async () => {
    const page = await open(1440);
    await page.goto(`${m.url}/#/agents`);
    const rows = page.locator('#agents tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(run.agents.length);
    const text = (await page.textContent('#agents')) ?? '';
    for (const a of run.agents) expect(text).toContain(a);
    // the fixture's agents beat until the log's end: by the log's clock none is stale
    expect(new Set(await page.locator('#agents .badge').allTextContents())).toEqual(new Set(['ok']));
    expect(Number((await rows.first().locator('td').nth(5).textContent())?.replace(/,/g, ''))).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, 'monitor-agents.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('filters the logs by level, agent, run and text, and keeps the filter in the link', async () => {
    const page = await open(1440);
    await page.goto(`${m.url}/#/logs`);
    await page.locator('#logs-count').waitFor({ timeout: 20_000 });
    const all = Number((await page.textContent('#logs-count'))?.replace(/,/g, '').match(/\d+/)?.[0]);
    expect(all).toBeGreaterThan(0);
    await page.selectOption('#filter-level', 'WARNING');
    await page.click('#filters button');
    await expect.poll(() => page.url()).toContain('#/logs?level=WARNING');
    await expect
      .poll(async () => Number((await page.textContent('#logs-count'))?.replace(/,/g, '').match(/\d+/)?.[0]))
      .toBeLessThan(all);
    for (const level of await page.locator('#logs tbody .badge').allTextContents())
      expect(['WARNING', 'ERROR', 'CRITICAL']).toContain(level);
    await page.screenshot({ path: join(ARTIFACTS, 'monitor-logs.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  for (const width of [1440, 420]) {
    it(`reaches a failed slice in one click from the run page, then its page, at ${width} px`, async () => {
      const page = await open(width);
      await page.goto(`${m.url}/#/runs/${run.runNumber}`);
      await page.locator('#failed-slices').click();
      const rows = page.locator('#slices tbody tr');
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(run.expected.slices_failed);
      expect(await page.textContent('#slices tbody')).toContain(run.incidents!.failedForGood);
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-slices-${width}.png`), fullPage: true });
      await page.locator(`#slices tbody a[href^="#/slice/"]`).first().click();
      await expect.poll(() => page.textContent('main'), { timeout: 10_000 }).toContain(run.incidents!.failedForGood);
      expect(await page.textContent('main')).toContain('failed');
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-slice-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);

    it(`lists the failed slices on the run page; one click opens a slice with its events in order, at ${width} px`, async () => {
      const page = await open(width);
      await page.goto(`${m.url}/#/runs/${run.runNumber}`);
      const link = page.locator('#failed-list a.slice-link');
      await expect.poll(() => link.count(), { timeout: 20_000 }).toBe(run.expected.slices_failed);
      await link.first().click();
      const rows = page.locator('#slice-events tbody tr');
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(await page.textContent('main h1')).toBe(run.incidents!.failedForGood);
      const positions = (await page.locator('#slice-events tbody td:nth-child(1)').allTextContents()).map((t) =>
        Number(t.replace(/[#,]/g, '')),
      );
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      const types = await page.locator('#slice-events tbody td:nth-child(2)').allTextContents();
      expect(types).toEqual(expect.arrayContaining(['slice', 'SliceProcessingStarted', 'slice_result']));
      const attempts = await page.locator('#slice-events tbody td:nth-child(5)').allTextContents();
      expect(new Set(attempts)).toEqual(new Set(['1', '2', '3', '4']));
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, `monitor-slice-events-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);
  }

  it('filters the slice browser by worker and attempt', async () => {
    const page = await open(1440);
    await page.goto(`${m.url}/#/slices?run_number=${run.runNumber}&attempt=2`);
    await page.locator('#slices-count').waitFor({ timeout: 20_000 });
    const attempts = await page.locator('#slices tbody tr td:nth-child(3)').allTextContents();
    expect(attempts.length).toBeGreaterThan(0);
    expect(new Set(attempts)).toEqual(new Set(['2']));
    await page.goto(`${m.url}/#/slices?run_number=${run.runNumber}&assigned_worker=${run.workers[0]}`);
    await expect
      .poll(async () => new Set(await page.locator('#slices tbody tr td:nth-child(4)').allTextContents()))
      .toEqual(new Set([run.workers[0]]));
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
