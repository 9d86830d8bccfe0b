/**
 * The web page in headless Chromium (playwright-core + Debian's chromium): open the monitor with an empty store,
 * start a realtime run, watch the execution appear and the run's counters change live, check the state chart
 * highlights the phase, and keep a screenshot in test-artifacts/. Uses the built CLI (`npm test` builds first).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, startNode } from '../helpers/spawn.js';

const CHROMIUM = process.env.SWF_CHROMIUM ?? '/usr/bin/chromium';
const skipReason = existsSync(CHROMIUM)
  ? undefined
  : `no Chromium at ${CHROMIUM} (to run it: \`sudo apt-get install -y chromium\`, or set SWF_CHROMIUM to a Chromium binary)`;
if (skipReason) console.warn(`[swf-es] skipped the browser test of the monitor's web page: ${skipReason}`);

const CLI = 'dist/src/cli/main.js';
const ARTIFACTS = resolve('test-artifacts');

describe.skipIf(skipReason !== undefined)('the monitor’s web page in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swf-browser-'));
  const storeUrl = `sqlite:${join(dir, 'swf.db')}`;
  let monitor: Child;
  let url: string;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    monitor = startNode(CLI, ['monitor', '--store', storeUrl, '--port', '0', '--json'], { SWF_STORE: '' });
    url = (await monitor.waitFor((l) => typeof l.url === 'string')).url as string;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    // Nothing may leave the machine: every asset is local.
    await page.route(/^(?!http:\/\/(127\.0\.0\.1|localhost))/, (route) => {
      errors.push(`external request: ${route.request().url()}`);
      return route.abort();
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    monitor?.proc.kill('SIGTERM');
    await monitor?.exited;
  });

  it('shows the empty state, then a realtime run with its counters changing live, and keeps a screenshot', async () => {
    await page.goto(`${url}/#/`);
    await expect.poll(() => page.textContent('main'), { timeout: 10_000 }).toContain('No workflow executions yet');

    const run = startNode(
      CLI,
      ['run', '--store', storeUrl, '--realtime', '--speed', '100', '--set', 'fast_processing.stf_count=6', '--json'],
      { SWF_STORE: '' },
    );
    // The execution and its run appear on the list without a reload.
    const runLink = page.locator('a[href="#/runs/100010"]').first();
    await runLink.waitFor({ timeout: 20_000 });
    await runLink.click();
    await page.locator('[data-counter="slices_completed"] .value').waitFor({ timeout: 10_000 });

    mkdirSync(ARTIFACTS, { recursive: true });
    const seen = new Set<string>();
    const phases = new Set<string>();
    let liveShot = false;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      seen.add((await page.textContent('[data-counter="slices_completed"] .value')) ?? '');
      phases.add((await page.getAttribute('.statechart .state.current', 'data-state')) ?? '');
      if (!liveShot && (await page.textContent('[data-counter="slices_processing"] .value')) !== '0') {
        await page.screenshot({ path: join(ARTIFACTS, 'monitor-run-live.png'), fullPage: true });
        liveShot = true;
      }
      if ((await page.locator('.finished').count()) > 0) break;
      await page.waitForTimeout(150);
    }
    const summary = await run.waitFor((l) => typeof l.run_number === 'number', 60_000);
    await run.exited;
    const slices = summary.slices as { created: number; completed: number };

    // Counters changed while the run went on, and settled on the run's own summary.
    expect(seen.size, `values seen: ${[...seen].join(' ')}`).toBeGreaterThanOrEqual(3);
    await expect
      .poll(() => page.textContent('[data-counter="slices_completed"] .value'), { timeout: 10_000 })
      .toBe(slices.completed.toLocaleString('en-US'));
    await expect.poll(() => page.textContent('#run-phase'), { timeout: 10_000 }).toContain('finished');
    expect(phases.has('physics') || phases.has('completed')).toBe(true);
    expect(await page.getAttribute('.statechart .state.current', 'data-state')).toBe('completed');
    expect(await page.locator('.charts').first().locator('.statechart').count()).toBe(2);
    expect(await page.locator('#feed li').count()).toBeGreaterThan(10);
    expect(await page.textContent('[data-counter="slices_created"] .value')).toBe(
      slices.created.toLocaleString('en-US'),
    );

    await page.screenshot({ path: join(ARTIFACTS, 'monitor-run.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'monitor-run.png'))).toBe(true);

    // The timeline: the same run at its first event, then at its end, folded from the log.
    await page.reload();
    const slider = page.locator('#timeline-slider');
    await slider.waitFor({ timeout: 20_000 });
    const [min, max] = [Number(await slider.getAttribute('min')), Number(await slider.getAttribute('max'))];
    expect(max).toBeGreaterThan(min);
    const moveTo = async (position: number): Promise<void> => {
      await slider.fill(String(position));
      await expect
        .poll(() => page.textContent('#timeline-position'), { timeout: 20_000 })
        .toBe(`position ${position.toLocaleString('en-US')}`);
    };
    await moveTo(min);
    expect(await page.textContent('#timeline-counts')).toContain('completed 0');
    expect(await page.getAttribute('#timeline-at .statechart .state.current', 'data-state')).not.toBe('completed');
    await moveTo(max);
    expect(await page.textContent('#timeline-counts')).toContain(
      `completed ${slices.completed.toLocaleString('en-US')}`,
    );
    expect(await page.getAttribute('#timeline-at .statechart .state.current', 'data-state')).toBe('completed');
    await page.screenshot({ path: join(ARTIFACTS, 'monitor-timeline.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 180_000);

  it('says clearly when a run does not exist', async () => {
    await page.goto(`${url}/#/runs/999999`);
    await expect
      .poll(() => page.textContent('main'), { timeout: 10_000 })
      .toContain('There is no run 999999 in this store');
    await page.goto(`${url}/#/executions/nope`);
    await expect
      .poll(() => page.textContent('main'), { timeout: 10_000 })
      .toContain('There is no execution “nope” in this store');
  });
});
