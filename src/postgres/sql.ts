/**
 * The SQL of PostgresStore, shared with PostgresLocker's fenced view (which
 * runs the same statements inside the lock's transaction). One table, one row
 * per session:
 *
 *   sid text PRIMARY KEY, value text (NULL: a tombstone), v bigint (the
 *   record's version; 0 for a row written by `set()` or by hand),
 *   expires_at timestamptz
 *
 * Expiry is compared with `clock_timestamp()` (the time of the statement), not
 * `now()` (the start of the transaction): inside a lock's transaction the two
 * differ by however long the scope has held the lock.
 */
import { StoreError } from '../errors.js';
import { Validator, checkTtl, checkVersionedWrite } from '../util/validate.js';
import type { WriteCondition } from '../contracts/store.js';

/** The name of PostgresStore in logs, events and errors. */
export const POSTGRES_STORE_NAME = 'postgres';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** What node-postgres answers to one statement. */
export interface PgResult {
  rows: any[];
  rowCount: number | null;
}

/** A pooled node-postgres client (`PoolClient`), structurally: `@types/pg` is not needed to use this package. */
export interface PgClientLike {
  /** Run one statement (with `$1…` values) or several (simple protocol, no values). */
  query(text: string, values?: any[]): Promise<any>;
  /** Give the client back to its pool; with an error (or `true`) the pool destroys it instead. */
  release(destroy?: Error | boolean): void;
  /** A broken or server-ended connection: the lease it holds is lost. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Undo {@link on} when the client goes back to its pool. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** A node-postgres `Pool` (pg ≥ 8), structurally. */
export interface PgPoolLike {
  /** Check out a client (a lock's transaction, a versioned write). */
  connect(): Promise<PgClientLike>;
  /** Close every client: only for a pool the store created (`PostgresStore.connect()`). */
  end(): Promise<void>;
  /** An idle client's error: a pool the store created gets a listener, so it cannot crash the process. */
  on(event: 'error', listener: (error: Error, client: unknown) => void): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** A plain or schema-qualified identifier: `sessions`, `app.sessions`. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/;

/** `"schema"."table"` from `schema.table` (validated: never interpolate user input unchecked). */
export function quoteTable(name: unknown, who: string): string {
  if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
    const check: Validator = new Validator(who);
    check.fail('table', "a table name like 'sessions' or 'schema.sessions' (letters, digits, _)", name);
  }
  return name
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}

/** The index on expires_at (for the sweep): named after the table. */
function indexName(table: string): string {
  const bare = table.split('.').pop()!.replaceAll('"', '');
  return `"${bare}_expires_at_idx"`;
}

/** The schema, idempotent. docs/postgresql.md gives the same SQL for schema migrations. */
export function createTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  sid text PRIMARY KEY,
  value text,
  v bigint NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${indexName(table)} ON ${table} (expires_at)`;
}

/**
 * PostgreSQL `text` cannot hold U+0000. A record containing it (a custom
 * serializer's output; JSON escapes it) is stored as this marker followed by
 * the record as a JSON string, and decoded on read. A record that itself
 * starts with the marker is stored the same way, so decoding is exact.
 */
const ENCODED = '\u0001kls-json:';

/** The text stored for `value` (see {@link ENCODED}). */
export function encodeValue(value: string): string {
  return value.includes('\u0000') || value.startsWith(ENCODED) ? ENCODED + JSON.stringify(value) : value;
}

/** The record stored as `text` (see {@link ENCODED}). */
export function decodeValue(text: string): string {
  if (!text.startsWith(ENCODED)) return text;
  try {
    const value: unknown = JSON.parse(text.slice(ENCODED.length));
    return typeof value === 'string' ? value : text;
  } catch {
    return text; // written by hand: handed on as is, the session layer reports it
  }
}

/** One statement with its parameters. */
export interface Statement {
  readonly text: string;
  readonly values: readonly (string | number | null)[];
  /** How to read "applied" from the result. */
  readonly applied: (result: PgResult) => boolean;
}

const ttlExpr = (param: string): string => `clock_timestamp() + ${param}::double precision * interval '1 millisecond'`;
const LIVE = 'expires_at > clock_timestamp()';
const byCount = (result: PgResult): boolean => result.rowCount === 1;
const byFlag = (result: PgResult): boolean => result.rows[0]?.ok === true;

export function readSql(table: string, key: string, forUpdate = false): Statement {
  // Liveness is computed, not filtered, under FOR UPDATE: the row is locked even when expired.
  return forUpdate
    ? { text: `SELECT value, v, ${LIVE} AS live FROM ${table} WHERE sid = $1 FOR UPDATE`, values: [key], applied: byCount }
    : { text: `SELECT value, v, true AS live FROM ${table} WHERE sid = $1 AND ${LIVE}`, values: [key], applied: byCount };
}

export function setSql(table: string, key: string, value: string, ttlMs: number): Statement {
  return {
    text: `INSERT INTO ${table} (sid, value, v, expires_at) VALUES ($1, $2, 0, ${ttlExpr('$3')})
ON CONFLICT (sid) DO UPDATE SET value = EXCLUDED.value, v = 0, expires_at = EXCLUDED.expires_at`,
    values: [key, encodeValue(value), checkTtl(POSTGRES_STORE_NAME, 'SET', ttlMs)],
    applied: () => true,
  };
}

export function destroySql(table: string, key: string): Statement {
  return { text: `DELETE FROM ${table} WHERE sid = $1`, values: [key], applied: () => true };
}

export function touchSql(table: string, key: string, ttlMs: number): Statement {
  // Only a live record is extended: never an absent, expired or tombstoned one.
  return {
    text: `UPDATE ${table} SET expires_at = ${ttlExpr('$2')} WHERE sid = $1 AND value IS NOT NULL AND ${LIVE}`,
    values: [key, checkTtl(POSTGRES_STORE_NAME, 'TOUCH', ttlMs)],
    applied: byCount,
  };
}

/**
 * The versioned write of {@link VersionedStore.write}, as one statement that
 * checks the condition where the row lives (see WriteCondition):
 * - a version `c`: `UPDATE`/`DELETE … WHERE v = c` of a live record;
 * - `null`: `INSERT … ON CONFLICT DO UPDATE … WHERE` the row there has expired;
 * - `'newer'`: the same upsert, applied only over an older or expired row.
 */
export function writeSql(
  table: string,
  key: string,
  value: string | undefined,
  version: number,
  ttlMs: number,
  condition: WriteCondition,
): Statement {
  checkVersionedWrite(POSTGRES_STORE_NAME, 'WRITE', version, condition);
  const remove = value === undefined && ttlMs === 0;
  if (typeof condition === 'number') {
    const match = `sid = $1 AND v = $2 AND value IS NOT NULL AND ${LIVE}`;
    if (remove) return { text: `DELETE FROM ${table} WHERE ${match}`, values: [key, condition], applied: byCount };
    return {
      text: `UPDATE ${table} SET value = $3, v = $4, expires_at = ${ttlExpr('$5')} WHERE ${match}`,
      values: [key, condition, value === undefined ? null : encodeValue(value), version, checkTtl(POSTGRES_STORE_NAME, 'WRITE', ttlMs)],
      applied: byCount,
    };
  }
  if (remove) {
    // Removing: nothing live may stand in the way ('newer': nothing as new or newer).
    const older = condition === 'newer' ? `(v < $2 OR NOT ${LIVE})` : `NOT ${LIVE}`;
    return {
      text: `WITH d AS (DELETE FROM ${table} WHERE sid = $1 AND ${older} RETURNING 1)
SELECT EXISTS (SELECT 1 FROM d) OR NOT EXISTS (SELECT 1 FROM ${table} WHERE sid = $1 AND ${LIVE}) AS ok`,
      values: [key, version],
      applied: byFlag,
    };
  }
  const over = condition === 'newer' ? `(s.v < EXCLUDED.v OR s.expires_at <= clock_timestamp())` : `s.expires_at <= clock_timestamp()`;
  return {
    text: `INSERT INTO ${table} AS s (sid, value, v, expires_at) VALUES ($1, $2, $3, ${ttlExpr('$4')})
ON CONFLICT (sid) DO UPDATE SET value = EXCLUDED.value, v = EXCLUDED.v, expires_at = EXCLUDED.expires_at WHERE ${over}`,
    values: [key, value === undefined ? null : encodeValue(value), version, checkTtl(POSTGRES_STORE_NAME, 'WRITE', ttlMs)],
    applied: byCount,
  };
}

/** A bounded batch of the sweep: `LIMIT` + `SKIP LOCKED`, so it never waits on (or long holds) live sessions' rows. */
export function sweepSql(table: string, batch: number): string {
  return `DELETE FROM ${table} WHERE sid IN (SELECT sid FROM ${table} WHERE expires_at <= now() LIMIT ${batch} FOR UPDATE SKIP LOCKED)`;
}

/** A SQL string literal of `text` (E'…' with quotes and backslashes doubled: correct whatever standard_conforming_strings says). */
export function literal(text: string): string {
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/**
 * `statement` with its parameters written in as literals, for a multi-statement
 * simple query (one round trip for several statements; the extended protocol
 * that carries parameters takes one statement per query). Values are strings
 * (quoted by {@link literal}), finite numbers or null.
 */
export function inline(statement: Statement): string {
  return statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = statement.values[Number(n) - 1];
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new StoreError(POSTGRES_STORE_NAME, 'expected a finite number in a statement', { status: 500 });
      return String(value);
    }
    return literal(value);
  });
}

/** The version of a row (`bigint` arrives as a string); anything unreadable is 0. */
export function versionOf(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** SQLSTATE of a node-postgres error, if any (not a Node.js code such as `ECONNREFUSED`). */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
