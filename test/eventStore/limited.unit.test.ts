import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { limitedStatement } from '../../src/eventStore/sqlite/limited.js';

describe('limitedStatement', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  for (let i = 0; i < 50; i++) insert.run(`v${i}`);
  const bound = db.prepare('SELECT k, v FROM t WHERE k >= ? ORDER BY k LIMIT ?').raw();

  it('returns what the bound form returns, for every limit, with or without a variant of its own', () => {
    const s = limitedStatement(db, 'SELECT k, v FROM t WHERE k >= ? ORDER BY k LIMIT ?');
    // More distinct limits than it keeps variants of: the later ones use the bound form.
    for (const limit of [1, 1000, 0, 3, 7, 9, 11, 13, 17, 19, 23, 1, 1000]) {
      for (const from of [1, 20, 49, 60]) expect(s.all(from, limit)).toEqual(bound.all(from, limit));
    }
  });

  it('passes a limit it cannot write into the SQL to SQLite as it is', () => {
    const s = limitedStatement(db, 'SELECT k FROM t WHERE k >= ? ORDER BY k LIMIT ?');
    expect(s.all(1, -1)).toHaveLength(50); // SQLite: a negative limit is no limit
    expect(() => s.all(1, 2.5)).toThrow(/datatype mismatch/); // as the bound form does
    expect(() => bound.all(1, 2.5)).toThrow(/datatype mismatch/);
  });

  it('refuses SQL that does not end in LIMIT ?', () => {
    expect(() => limitedStatement(db, 'SELECT k FROM t LIMIT 5')).toThrow(/must end in LIMIT \?/);
  });
});
