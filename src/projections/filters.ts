/**
 * The filters each list accepts, declared once: REST parses query strings with them, MCP builds its tools' zod
 * schemas from them, and the queries turn them into WHERE clauses with bound parameters (never spliced values).
 * A value that does not fit is a `ValidationError` naming the parameter and what was wrong (HTTP 400, a tool
 * error).
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';

export type FilterKind = 'int' | 'text' | 'enum' | 'time' | 'bool' | 'level';

export interface FilterSpec {
  name: string;
  kind: FilterKind;
  /** What it does, for an LLM and for `--help`-like listings. */
  description: string;
  /** For `enum`: the allowed values (compared case-insensitively). */
  values?: readonly string[];
}

export type FilterValue = string | number | boolean;
export type FilterValues = Record<string, FilterValue>;

/** Longest text a filter takes (file names are ~50 characters). */
export const MAX_TEXT = 256;
/** Largest page (`limit`). */
export const MAX_LIMIT = 10_000;

const LEVELS: Record<string, number> = {
  CRITICAL: 50,
  FATAL: 50,
  ERROR: 40,
  WARNING: 30,
  WARN: 30,
  INFO: 20,
  DEBUG: 10,
  NOTSET: 0,
};

/** A timestamp as the views store them (ISO-8601 UTC with milliseconds); naive times are read as UTC. */
export function normalizeTime(raw: string, name: string): string {
  const s = raw.trim();
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
  if (s.length > 40 || !iso.test(s)) {
    throw new ValidationError(
      `${name} must be an ISO-8601 time such as 2026-01-15T10:00:00Z, got ${JSON.stringify(raw.slice(0, 60))}`,
      { field: name },
    );
  }
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? s : s.length === 10 ? `${s}T00:00:00Z` : `${s}Z`;
  const ms = Date.parse(zoned.replace(' ', 'T'));
  // Date.parse rolls 2026-02-30 over to March 2: a day, hour or minute out of its range is not a time.
  const [y, mo, d, h, mi, se] = [...s.matchAll(/\d+/g)].slice(0, 6).map((m) => Number(m[0]));
  const daysInMonth = new Date(Date.UTC(y!, mo, 0)).getUTCDate();
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth || (h ?? 0) > 23 || (mi ?? 0) > 59 || (se ?? 0) > 59)
    throw new ValidationError(`${name} is not a valid time: ${JSON.stringify(raw.slice(0, 60))}`, { field: name });
  if (Number.isNaN(ms))
    throw new ValidationError(`${name} is not a valid time: ${JSON.stringify(raw)}`, { field: name });
  return new Date(ms).toISOString();
}

/** Checks and converts one value (from a query string or a tool argument). */
export function convertFilter(spec: FilterSpec, raw: unknown): FilterValue {
  const name = spec.name;
  const shown = (v: unknown): string => JSON.stringify(typeof v === 'string' ? v.slice(0, 60) : v);
  switch (spec.kind) {
    case 'int': {
      const n =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && /^\d{1,16}$/.test(raw.trim())
            ? Number(raw.trim())
            : NaN;
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new ValidationError(`${name} must be a whole number >= 0, got ${shown(raw)}`, { field: name });
      }
      return n;
    }
    case 'text': {
      if (typeof raw !== 'string' || raw.length === 0)
        throw new ValidationError(`${name} must be a non-empty text`, { field: name });
      if (raw.length > MAX_TEXT)
        throw new ValidationError(`${name} is longer than ${MAX_TEXT} characters`, { field: name });
      if ([...raw].some((c) => c.charCodeAt(0) < 0x20))
        throw new ValidationError(`${name} must not contain control characters`, { field: name });
      return raw;
    }
    case 'enum': {
      const v = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
      const hit = spec.values?.find((x) => x.toLowerCase() === v);
      if (hit === undefined) {
        throw new ValidationError(`${name} must be one of ${(spec.values ?? []).join(', ')}, got ${shown(raw)}`, {
          field: name,
        });
      }
      return hit;
    }
    case 'time':
      if (typeof raw !== 'string') throw new ValidationError(`${name} must be an ISO-8601 time`, { field: name });
      return normalizeTime(raw, name);
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const v = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
      if (['true', '1', 'yes'].includes(v)) return true;
      if (['false', '0', 'no'].includes(v)) return false;
      throw new ValidationError(`${name} must be true or false, got ${shown(raw)}`, { field: name });
    }
    case 'level': {
      if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 50) return raw;
      const v = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
      if (/^\d{1,2}$/.test(v) && Number(v) <= 50) return Number(v);
      const n = LEVELS[v];
      if (n === undefined) {
        throw new ValidationError(
          `${name} must be a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL) or 0-50, got ${shown(raw)}`,
          { field: name },
        );
      }
      return n;
    }
  }
}

export interface PageRequest {
  limit?: number;
  offset?: number;
}

function pageNumber(raw: string, name: 'limit' | 'offset'): number {
  const max = name === 'limit' ? MAX_LIMIT : Number.MAX_SAFE_INTEGER;
  const v = raw.trim();
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new ValidationError(
      `${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(raw.slice(0, 60))}`,
      { field: name },
    );
  }
  return n;
}

/**
 * A query string against a list's filters (plus `limit`/`offset`): an unknown or repeated parameter, or a value
 * that does not fit, is a `ValidationError`.
 */
export function parseQuery(
  params: URLSearchParams,
  specs: readonly FilterSpec[],
  options: { paging?: boolean; extra?: readonly string[] } = {},
): { filters: FilterValues; page: PageRequest | undefined; extra: Record<string, string> } {
  const paging = options.paging ?? true;
  const filters: FilterValues = {};
  const extra: Record<string, string> = {};
  const page: PageRequest = {};
  const seen = new Set<string>();
  for (const [key, raw] of params) {
    if (seen.has(key))
      throw new ValidationError(`query parameter '${key.slice(0, 40)}' is given more than once`, {
        field: key.slice(0, 40),
      });
    seen.add(key);
    if (paging && (key === 'limit' || key === 'offset')) {
      page[key] = pageNumber(raw, key);
      continue;
    }
    if (options.extra?.includes(key)) {
      if (raw.length > MAX_TEXT)
        throw new ValidationError(`${key} is longer than ${MAX_TEXT} characters`, { field: key });
      extra[key] = raw;
      continue;
    }
    const spec = specs.find((s) => s.name === key);
    if (!spec) {
      const known = [...specs.map((s) => s.name), ...(paging ? ['limit', 'offset'] : []), ...(options.extra ?? [])];
      throw new ValidationError(
        `unknown query parameter ${JSON.stringify(key.slice(0, 40))}; this list takes ${known.join(', ')}`,
        {
          field: key.slice(0, 40),
        },
      );
    }
    if (raw === '') continue;
    filters[key] = convertFilter(spec, raw);
  }
  if (page.offset !== undefined && page.limit === undefined) {
    throw new ValidationError('offset needs limit (as in ?limit=100&offset=200)', { field: 'offset' });
  }
  return { filters, page: page.limit !== undefined ? page : undefined, extra };
}

/** Tool arguments (already typed by the tool's zod schema) through the same checks. */
export function convertArguments(args: Record<string, unknown>, specs: readonly FilterSpec[]): FilterValues {
  const out: FilterValues = {};
  for (const spec of specs) {
    const v = args[spec.name];
    if (v === undefined || v === null || v === '') continue;
    out[spec.name] = convertFilter(spec, v);
  }
  return out;
}

/** The zod shape of a list's filters, for an MCP tool's input schema. */
export function zodShape(specs: readonly FilterSpec[]): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {};
  for (const s of specs) {
    let t: z.ZodType;
    switch (s.kind) {
      case 'int':
        t = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
        break;
      case 'text':
        t = z.string().min(1).max(MAX_TEXT);
        break;
      case 'enum':
        t = z.enum(s.values as [string, ...string[]]);
        break;
      case 'time':
        t = z.string().max(40);
        break;
      case 'bool':
        t = z.boolean();
        break;
      case 'level':
        t = z.union([z.number().int().min(0).max(50), z.string().max(10)]);
        break;
    }
    shape[s.name] = t.optional().describe(s.description);
  }
  return shape;
}
