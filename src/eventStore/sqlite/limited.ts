/**
 * Statements whose LIMIT is written into the SQL. SQLite runs a short read with a bound `LIMIT ?` two to three
 * times slower than the same read with a literal limit (a 1-row read by stream and revision: ~14 µs against ~5 µs
 * on the development machine; an empty read of the log's tail: ~9 µs against ~3 µs), and the subscriptions and the
 * group's claims make such reads after every commit. Each statement keeps a few literal-limit variants (the page
 * size, a group's buffer size, small `maxCount`s) and falls back to the bound form for other limits.
 */
import type Database from 'better-sqlite3';

const VARIANTS = 8;

export interface LimitedStatement {
  /** Runs the statement in raw mode: the SQL's parameters, then the limit. */
  all(...args: unknown[]): unknown[];
}

/** `sql` ends in `LIMIT ?`. */
export function limitedStatement(db: Database.Database, sql: string): LimitedStatement {
  if (!/LIMIT \?\s*$/.test(sql)) throw new Error(`limitedStatement: the SQL must end in LIMIT ?: ${sql}`);
  const bound = db.prepare(sql).raw();
  const variants = new Map<number, Database.Statement>();
  return {
    all(...args: unknown[]): unknown[] {
      const limit = args[args.length - 1];
      if (typeof limit === 'number') {
        let s = variants.get(limit);
        if (!s && variants.size < VARIANTS && Number.isSafeInteger(limit) && limit >= 0) {
          s = db.prepare(sql.replace(/LIMIT \?\s*$/, `LIMIT ${limit}`)).raw();
          variants.set(limit, s);
        }
        if (s) {
          args.pop();
          return s.all(...args);
        }
      }
      return bound.all(...args);
    },
  };
}
