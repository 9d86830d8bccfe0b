/**
 * The REST API, testbed-shaped (testbed-facts §5.1): each route parses its path and query string and calls a
 * query. Lists are plain JSON arrays; with `?limit=&offset=` they are DRF pages `{count, next, previous,
 * results}`. Read-only.
 */
import type { EventStore } from '../eventStore/eventStore.js';
import { locateRun } from '../replay/runEvents.js';
import { replayRun } from '../replay/timeTravel.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { withBodies } from '../projections/bodies.js';
import type { ViewsDb } from '../projections/db.js';
import { parseQuery, type PageRequest } from '../projections/filters.js';
import { sliceHistory } from '../projections/sliceHistory.js';
import { listDefinitions, listStateEvents } from '../projections/testbedRecords.js';
import {
  filtersOf,
  getAgent,
  getExecution,
  getLog,
  getRun,
  getRunState,
  getSample,
  getSlice,
  getStfFile,
  list,
  type ListName,
  machinesOf,
  sliceCounts,
  workflowMonitor,
} from '../projections/queries.js';
import { SERIES_ROUTES } from './seriesRoutes.js';

export interface ApiResult {
  status: number;
  body: unknown;
}

interface Route {
  pattern: RegExp;
  describe: string;
  handle(db: ViewsDb, match: string[], url: URL, store: EventStore): unknown;
}

function decode(segment: string | undefined, what: string): string {
  try {
    const s = decodeURIComponent(segment ?? '');
    if (s.length === 0 || s.length > 256) throw new Error('length');
    return s;
  } catch {
    throw new ValidationError(`the ${what} in the path is not valid`, { field: what });
  }
}

function runNumberIn(segment: string | undefined): number {
  const s = segment ?? '';
  if (!/^\d{1,15}$/.test(s))
    throw new ValidationError(`a run number is digits, got ${JSON.stringify(decodeSafe(s).slice(0, 40))}`, {
      field: 'run_number',
    });
  return Number(s);
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function noQuery(url: URL): void {
  const key = [...url.searchParams.keys()][0];
  if (key !== undefined)
    throw new ValidationError(`unknown query parameter ${JSON.stringify(key.slice(0, 40))}: this endpoint takes none`, {
      field: key.slice(0, 40),
    });
}

/** A DRF page: `next`/`previous` are absolute URLs with the same filters. */
function pageOf(url: URL, page: PageRequest, count: number, results: unknown[]): unknown {
  const limit = page.limit ?? 100;
  const offset = page.offset ?? 0;
  const link = (o: number): string => {
    const u = new URL(url.href);
    u.searchParams.set('limit', String(limit));
    if (o > 0) u.searchParams.set('offset', String(o));
    else u.searchParams.delete('offset');
    return u.href;
  };
  return {
    count,
    next: limit > 0 && offset + limit < count ? link(offset + limit) : null,
    previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
    results,
  };
}

function listRoute(
  name: ListName,
  options: { order?: (filters: Record<string, unknown>) => 'asc' | 'desc'; bodies?: boolean } = {},
) {
  return async (db: ViewsDb, _m: string[], url: URL, store: EventStore): Promise<unknown> => {
    const { filters, page } = parseQuery(url.searchParams, filtersOf(name));
    const order = options.order?.(filters);
    const result = list(db, name, { filters, page, ...(order ? { order } : {}) });
    const rows = options.bodies ? await withBodies(store, result.rows) : result.rows;
    return page ? pageOf(url, page, result.count, rows) : rows;
  };
}

const ROUTES: Route[] = [
  ...SERIES_ROUTES,
  {
    pattern: /^\/api\/workflow-executions\/?$/,
    describe: '/api/workflow-executions/',
    handle: listRoute('executions'),
  },
  {
    pattern: /^\/api\/workflow-executions\/([^/]+)\/?$/,
    describe: '/api/workflow-executions/{execution_id}/',
    handle: (db, m, url) => (noQuery(url), getExecution(db, decode(m[1], 'execution id'))),
  },
  { pattern: /^\/api\/runs\/?$/, describe: '/api/runs/', handle: listRoute('runs') },
  {
    pattern: /^\/api\/runs\/([^/]+)\/?$/,
    describe: '/api/runs/{run_number}/',
    handle: (db, m, url) => (noQuery(url), getRun(db, runNumberIn(m[1]))),
  },
  { pattern: /^\/api\/run-states\/?$/, describe: '/api/run-states/', handle: listRoute('runStates') },
  {
    pattern: /^\/api\/run-states\/([^/]+)\/?$/,
    describe: '/api/run-states/{run_number}/',
    handle: (db, m, url) => (noQuery(url), getRunState(db, runNumberIn(m[1]))),
  },
  { pattern: /^\/api\/stf-files\/?$/, describe: '/api/stf-files/', handle: listRoute('stfFiles') },
  {
    pattern: /^\/api\/stf-files\/([^/]+)\/?$/,
    describe: '/api/stf-files/{stf_filename or file_id}/',
    handle: (db, m, url) => (noQuery(url), getStfFile(db, decode(m[1], 'file name'))),
  },
  { pattern: /^\/api\/fastmon-files\/?$/, describe: '/api/fastmon-files/', handle: listRoute('fastmonFiles') },
  {
    pattern: /^\/api\/fastmon-files\/([^/]+)\/?$/,
    describe: '/api/fastmon-files/{tf_filename or tf_file_id}/',
    handle: (db, m, url) => (noQuery(url), getSample(db, decode(m[1], 'file name'))),
  },
  {
    pattern: /^\/api\/tf-slices\/counts\/?$/,
    describe: '/api/tf-slices/counts/?run_number=',
    handle: (db, _m, url) => {
      const { filters } = parseQuery(
        url.searchParams,
        filtersOf('slices').filter((f) => f.name === 'run_number'),
        { paging: false },
      );
      if (filters.run_number === undefined)
        throw new ValidationError('run_number is required', { field: 'run_number' });
      return { run_number: filters.run_number, ...sliceCounts(db, filters.run_number as number) };
    },
  },
  {
    pattern: /^\/api\/tf-slices\/?$/,
    describe: '/api/tf-slices/',
    // The testbed's fast processing agent looks a slice up by (run_number, slice_id) and updates the first match
    // (testbed-facts §10.7): in the testbed's order, oldest first.
    handle: listRoute('slices', { order: (f) => (f.slice_id !== undefined ? 'asc' : 'desc') }),
  },
  {
    pattern: /^\/api\/tf-slices\/([^/]+)\/events\/?$/,
    describe: '/api/tf-slices/{tf_filename}/events/ (the slice and its events in log order)',
    handle: (db, m, url, store) => (noQuery(url), sliceHistory(db, store, decode(m[1], 'slice'))),
  },
  {
    pattern: /^\/api\/tf-slices\/([^/]+)\/?$/,
    describe: '/api/tf-slices/{id or tf_filename}/',
    handle: (db, m, url) => {
      noQuery(url);
      const key = decode(m[1], 'slice');
      return /^\d{1,15}$/.test(key) ? getSlice(db, { id: Number(key) }) : getSlice(db, { tf_filename: key });
    },
  },
  {
    pattern: /^\/api\/workflow-messages\/?$/,
    describe: '/api/workflow-messages/',
    // The testbed orders one execution's messages oldest first, everything else newest first.
    handle: listRoute('messages', { order: (f) => (f.execution_id !== undefined ? 'asc' : 'desc'), bodies: true }),
  },
  { pattern: /^\/api\/logs\/?$/, describe: '/api/logs/', handle: listRoute('logs') },
  {
    pattern: /^\/api\/logs\/([^/]+)\/?$/,
    describe: '/api/logs/{id}/',
    handle: (db, m, url) => {
      noQuery(url);
      if (!/^\d{1,15}$/.test(m[1] ?? '')) throw new ValidationError('a log id is a number', { field: 'id' });
      return getLog(db, Number(m[1]));
    },
  },
  { pattern: /^\/api\/systemagents\/?$/, describe: '/api/systemagents/', handle: listRoute('agents') },
  {
    pattern: /^\/api\/systemagents\/([^/]+)\/?$/,
    describe: '/api/systemagents/{instance_name}/',
    handle: (db, m, url) => (noQuery(url), getAgent(db, decode(m[1], 'agent name'))),
  },
  {
    pattern: /^\/api\/workflow-monitor\/([^/]+)\/?$/,
    describe: '/api/workflow-monitor/{execution_id}/',
    handle: (db, m, url) => (noQuery(url), workflowMonitor(db, decode(m[1], 'execution id'))),
  },
  {
    pattern: /^\/api\/runs\/(\d{1,15})\/timeline\/?$/,
    describe: '/api/runs/{run_number}/timeline/?position= (the run as it stood at a log position)',
    handle: async (_db, m, url, store) => {
      const { extra } = parseQuery(url.searchParams, [], { paging: false, extra: ['position'] });
      const raw = extra.position;
      if (raw !== undefined && !/^\d{1,15}$/.test(raw))
        throw new ValidationError(`position must be a log position (digits), got ${JSON.stringify(raw.slice(0, 40))}`, {
          field: 'position',
        });
      const info = await locateRun(store, runNumberIn(m[1]));
      const end = await replayRun(store, info.run_id, undefined, info);
      const view = raw === undefined ? end : await replayRun(store, info.run_id, { position: BigInt(raw) }, info);
      return { ...view, first_position: info.started?.position ?? 0n, last_position: end.position };
    },
  },
  {
    pattern: /^\/api\/workflow-definitions\/?$/,
    describe: '/api/workflow-definitions/?workflow_name=&version=',
    handle: (db, _m, url) => {
      const { extra } = parseQuery(url.searchParams, [], { paging: false, extra: ['workflow_name', 'version'] });
      return listDefinitions(db, extra);
    },
  },
  {
    pattern: /^\/api\/system-state-events\/?$/,
    describe: '/api/system-state-events/?run_number=&event_type=&state=',
    handle: (db, _m, url) => {
      const { extra } = parseQuery(url.searchParams, [], {
        paging: false,
        extra: ['run_number', 'event_type', 'state'],
      });
      const { run_number, ...rest } = extra;
      return listStateEvents(db, {
        ...rest,
        ...(run_number !== undefined ? { run_number: runNumberIn(run_number) } : {}),
      });
    },
  },
  {
    pattern: /^\/api\/machines\/?$/,
    describe: '/api/machines/?execution_id=',
    handle: (db, _m, url) => {
      const { extra } = parseQuery(url.searchParams, [], { paging: false, extra: ['execution_id'] });
      return machinesOf(db, extra.execution_id);
    },
  },
];

/** The routes, for `GET /api/`. */
export const API_INDEX = [
  ...ROUTES.map((r) => r.describe),
  '/api/messages/stream/?msg_types=&agents=&run_ids=&namespace=&from=',
  '/api/messages/stream/status/',
  '/mcp (MCP, streamable HTTP)',
];

/** Finds and runs the route for `url` (a GET); throws NotFoundError for unknown paths. */
export async function handleApi(db: ViewsDb, store: EventStore, url: URL): Promise<unknown> {
  for (const route of ROUTES) {
    const m = route.pattern.exec(url.pathname);
    if (m) return route.handle(db, [...m], url, store);
  }
  throw new NotFoundError(`no endpoint ${url.pathname.slice(0, 100)}; GET /api/ lists them`);
}
