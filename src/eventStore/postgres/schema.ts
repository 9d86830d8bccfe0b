/**
 * The adapter's own schema, versioned in `swf_meta`. Creation and upgrades run under a transaction-level advisory
 * lock, so several processes starting at once (agents on several hosts) create it exactly once: PostgreSQL's
 * `CREATE TABLE IF NOT EXISTS` alone is not safe against a concurrent create (it can fail on the catalog's unique
 * index).
 */
import type pg from 'pg';
import { StoreCorruptError, StoreUnavailableError } from '../../errors.js';

/** An arbitrary constant: the advisory lock that serializes schema changes of every swf-es store in a database. */
const SCHEMA_LOCK = 0x5357_4645; // "SWFE"

/** Migration i brings the schema from version i to i + 1. Append only; never edit a released one. */
const MIGRATIONS: readonly string[] = [
  `
  -- The log head: one row whose update in each append's transaction hands out positions in commit order.
  CREATE TABLE swf_log_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint  NOT NULL
  );
  INSERT INTO swf_log_head (id, position) VALUES (true, 0);
  -- Each stream's current revision: the conditional update that makes optimistic concurrency.
  CREATE TABLE swf_streams (
    stream   text   PRIMARY KEY,
    revision bigint NOT NULL
  );
  CREATE TABLE swf_events (
    position    bigint      PRIMARY KEY,
    id          uuid        NOT NULL UNIQUE,
    stream      text        NOT NULL,
    revision    bigint      NOT NULL,
    type        text        NOT NULL,
    data        json        NOT NULL,
    metadata    json        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, revision)
  );
  CREATE TABLE swf_checkpoints (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
  );
  CREATE TABLE swf_group_cursors (
    stream          text    NOT NULL,
    grp             text    NOT NULL,
    next_revision   bigint  NOT NULL,
    max_retry_count integer NOT NULL,
    ack_timeout_ms  integer NOT NULL,
    PRIMARY KEY (stream, grp)
  );
  CREATE TABLE swf_group_deliveries (
    stream      text        NOT NULL,
    grp         text        NOT NULL,
    revision    bigint      NOT NULL,
    retry_count integer     NOT NULL,
    state       text        NOT NULL CHECK (state IN ('inflight', 'pending', 'parked')),
    member      text,
    deadline    timestamptz,
    reason      text,
    parked_at   timestamptz,
    PRIMARY KEY (stream, grp, revision)
  );
  CREATE INDEX swf_group_deliveries_state ON swf_group_deliveries (stream, grp, state, revision);
  `,
  `
  -- A whole group commit in one statement (one round trip, its own transaction): the log head's lock first, then
  -- each append (the stream's conditional update, its events numbered from the head), the new head, the
  -- checkpoints, the notification. Any append not where it expected its stream, or past 2^53, raises; the adapter
  -- then redoes the batch one write at a time to fail that write alone.
  CREATE FUNCTION swf_write(streams text[], kinds text[], expected int8[], counts int4[], ids uuid[],
                            types text[], datas text[], metas text[], cp_names text[], cp_positions int8[],
                            payload text)
  RETURNS TABLE (out_revision int8, out_position int8, out_at int8)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    head int8;
    rev int8;
    n int4;
    k int4 := 0;
  BEGIN
    IF cardinality(streams) > 0 THEN
      SELECT position INTO head FROM swf_log_head FOR UPDATE;
      FOR i IN 1 .. cardinality(streams) LOOP
        n := counts[i];
        IF head + n > 9007199254740991 THEN
          RAISE EXCEPTION 'swf-es: positions would pass 2^53' USING ERRCODE = 'SWF02';
        END IF;
        IF kinds[i] = 'any' THEN
          INSERT INTO swf_streams AS s (stream, revision) VALUES (streams[i], n - 1)
            ON CONFLICT (stream) DO UPDATE SET revision = s.revision + n RETURNING s.revision INTO rev;
        ELSIF kinds[i] = 'no_stream' THEN
          INSERT INTO swf_streams (stream, revision) VALUES (streams[i], n - 1)
            ON CONFLICT (stream) DO NOTHING RETURNING swf_streams.revision INTO rev;
        ELSIF kinds[i] = 'stream_exists' THEN
          UPDATE swf_streams s SET revision = s.revision + n WHERE s.stream = streams[i] RETURNING s.revision INTO rev;
        ELSE
          UPDATE swf_streams s SET revision = s.revision + n WHERE s.stream = streams[i] AND s.revision = expected[i]
            RETURNING s.revision INTO rev;
        END IF;
        IF rev IS NULL THEN
          RAISE EXCEPTION 'swf-es: stream % is not at the expected revision', streams[i] USING ERRCODE = 'SWF01';
        END IF;
        INSERT INTO swf_events (position, id, stream, revision, type, data, metadata)
          SELECT head + x.o, x.id, streams[i], rev - n + x.o, x.type, x.data::json, x.metadata::json
            FROM unnest(ids[k + 1 : k + n], types[k + 1 : k + n], datas[k + 1 : k + n], metas[k + 1 : k + n])
                 WITH ORDINALITY AS x(id, type, data, metadata, o);
        head := head + n;
        k := k + n;
        out_revision := rev;
        out_position := head;
        out_at := (extract(epoch FROM now()) * 1000)::int8;
        RETURN NEXT;
      END LOOP;
      UPDATE swf_log_head SET position = head;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(cp_names), 0) LOOP
      INSERT INTO swf_checkpoints (name, position) VALUES (cp_names[i], cp_positions[i])
        ON CONFLICT (name) DO UPDATE SET position = excluded.position;
    END LOOP;
    IF payload IS NOT NULL THEN
      PERFORM pg_notify('swf_events', payload);
    END IF;
  END
  $fn$;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Whether the database holds a swf-es store (for readers that must not create one). */
export async function hasStore(client: pg.ClientBase): Promise<boolean> {
  const r = await client.query<{ t: string | null }>(`SELECT to_regclass('swf_events')::text AS t`);
  return r.rows[0]?.t != null;
}

/** Creates or upgrades the schema to SCHEMA_VERSION; refuses one written by a newer swf-es. */
export async function ensureSchema(client: pg.ClientBase, where: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS swf_meta (key text PRIMARY KEY, value text NOT NULL)`);
    const r = await client.query<{ value: string }>(`SELECT value FROM swf_meta WHERE key = 'schema_version'`);
    const found = r.rows[0] ? Number(r.rows[0].value) : 0;
    if (!Number.isInteger(found) || found < 0)
      throw new StoreCorruptError(`${where}: swf_meta.schema_version is '${r.rows[0]?.value}', not a version number`);
    if (found > SCHEMA_VERSION) {
      throw new StoreUnavailableError(
        `${where} has schema version ${found}, written by a newer swf-es (this one knows up to ${SCHEMA_VERSION}): upgrade swf-es`,
      );
    }
    if (found === 0 && (await hasStore(client)))
      throw new StoreCorruptError(`${where} has a swf_events table but no schema version: not a swf-es store`);
    for (let v = found; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!);
    if (found < SCHEMA_VERSION) {
      await client.query(
        `INSERT INTO swf_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(SCHEMA_VERSION)],
      );
    }
    await client.query('COMMIT');
  } catch (e: unknown) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
