/**
 * REST routes of the monitor's charts: a run's time series (`/api/runs/{run}/series/?points=`) and its slice
 * latency histogram alone (`/api/runs/{run}/latency/`). Both read the rows the workflow projection folds for them.
 */
import { ValidationError } from '../errors.js';
import type { ViewsDb } from '../projections/db.js';
import { parseQuery } from '../projections/filters.js';
import { runLatency, runSeries } from '../projections/timeSeries.js';

export interface ViewRoute {
  pattern: RegExp;
  describe: string;
  handle(db: ViewsDb, match: string[], url: URL): unknown;
}

/** Most intervals a series may be cut into (a chart is at most a few thousand pixels wide). */
export const MAX_POINTS = 5_000;

function pointsOf(url: URL): number | undefined {
  const { extra } = parseQuery(url.searchParams, [], { paging: false, extra: ['points'] });
  const raw = extra.points;
  if (raw === undefined || raw === '') return undefined;
  const n = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_POINTS))
    throw new ValidationError(
      `points must be a whole number from 1 to ${MAX_POINTS}, got ${JSON.stringify(raw.slice(0, 40))}`,
      {
        field: 'points',
      },
    );
  return n;
}

export const SERIES_ROUTES: ViewRoute[] = [
  {
    pattern: /^\/api\/runs\/(\d{1,15})\/series\/?$/,
    describe:
      '/api/runs/{run_number}/series/?points= (slices per interval, queue depth, workers busy, STFs, samples, latency)',
    handle: (db, m, url) => {
      const points = pointsOf(url);
      return runSeries(db, Number(m[1]), points === undefined ? {} : { points });
    },
  },
  {
    pattern: /^\/api\/runs\/(\d{1,15})\/latency\/?$/,
    describe: '/api/runs/{run_number}/latency/ (slice latency queued → done, histogram)',
    handle: (db, m, url) => {
      parseQuery(url.searchParams, [], { paging: false });
      return runLatency(db, Number(m[1]));
    },
  },
];
