/**
 * Reads of the log through an EventFilter, the prefixes compared in SQL (bound, never spliced), so only matching
 * rows come back to be parsed. One prepared statement per distinct filter, kept for the store's life.
 */
import type Database from 'better-sqlite3';
import type { EventFilter } from '../eventStore.js';
import { limitedStatement } from './limited.js';

/** `position > after AND position <= upTo AND <filter>`, in position order, at most `limit` rows (raw). */
export interface FilteredQuery {
  all(after: number, upTo: number, limit: number): unknown[];
}

/** `(col >= ? AND col < ?) OR ...` for a column's prefixes, pushing the bound values onto `params`. */
function prefixTerms(column: string, prefixes: readonly string[], params: string[]): string {
  const terms = prefixes.map((p) => {
    if (p === '') return '1';
    // A prefix ending in an ASCII character is a range (`p <= col < p'`, p' = p with its last character the next
    // one): two comparisons per row instead of two function calls. Others fall back to substr.
    const last = p.charCodeAt(p.length - 1);
    if (last < 0x7f) {
      params.push(p, p.slice(0, -1) + String.fromCharCode(last + 1));
      return `(${column} >= ? AND ${column} < ?)`;
    }
    params.push(p, p);
    return `substr(${column}, 1, length(?)) = ?`;
  });
  return `(${terms.join(' OR ')})`;
}

/** The filtered reads of `events` (selecting `columns`), one statement per filter. */
export function filteredQueries(db: Database.Database, columns: string): (filter: EventFilter) => FilteredQuery {
  const statements = new Map<string, FilteredQuery>();
  return (filter) => {
    const key = JSON.stringify([filter.streamPrefix ?? [], filter.eventTypePrefix ?? []]);
    let stmt = statements.get(key);
    if (stmt) return stmt;
    const parts: string[] = [];
    const params: string[] = [];
    if (filter.streamPrefix && filter.streamPrefix.length > 0)
      parts.push(prefixTerms('stream', filter.streamPrefix, params));
    if (filter.eventTypePrefix && filter.eventTypePrefix.length > 0)
      parts.push(prefixTerms('type', filter.eventTypePrefix, params));
    const where = parts.length > 0 ? ` AND ${parts.join(' AND ')}` : '';
    const prepared = limitedStatement(
      db,
      `SELECT ${columns} FROM events WHERE position > ? AND position <= ?${where} ORDER BY position LIMIT ?`,
    );
    stmt = { all: (after, upTo, limit) => prepared.all(after, upTo, ...params, limit) };
    statements.set(key, stmt);
    return stmt;
  };
}
