/**
 * The PostgreSQL floor: Koa plus the fewest raw statements each route needs,
 * through one `pg.Pool`, with an unsigned `sid` cookie and JSON.
 *
 * | route        | statements                                            |
 * | ------------ | ----------------------------------------------------- |
 * | `/fresh`     | `INSERT`                                              |
 * | `/rmw`       | `SELECT value`, then `UPDATE … SET value` (no lock)   |
 * | `/read`      | `SELECT value`                                        |
 * | `/untouched` | none                                                  |
 *
 * No lock, no transaction, no signature, no version: what a PostgreSQL session
 * costs at the very least, not a usable session. It loses concurrent updates
 * like every unlocked read-modify-write.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import pg from 'pg';
import type { VariantFactory } from '../lib/types.js';
import { koaApp, countOf } from '../lib/routes.js';
import { postgresUrlOf } from './postgres-url.js';

const COOKIE = 'sid';
const TABLE = 'raw_sessions';

function sidOf(ctx: Context): string | undefined {
  const sid = ctx.cookies.get(COOKIE, { signed: false });
  return sid && /^[A-Za-z0-9_-]{43}$/.test(sid) ? sid : undefined;
}

export const rawPg: VariantFactory = async (env) => {
  const pool = new pg.Pool({ connectionString: postgresUrlOf(env), max: 10 });
  pool.on('error', () => {});
  await pool
    .query(`CREATE TABLE IF NOT EXISTS ${TABLE} (sid text PRIMARY KEY, value text NOT NULL, expires_at timestamptz NOT NULL)`)
    .catch(() => {});
  const ttl = env.ttlMs;
  const load = async (sid: string | undefined): Promise<Record<string, unknown> | undefined> => {
    if (!sid) return undefined;
    const { rows } = await pool.query(`SELECT value FROM ${TABLE} WHERE sid = $1 AND expires_at > now()`, [sid]);
    return rows[0] ? (JSON.parse(rows[0].value as string) as Record<string, unknown>) : undefined;
  };
  const create = async (ctx: Context, data: object): Promise<void> => {
    const id = randomBytes(32).toString('base64url');
    await pool.query(`INSERT INTO ${TABLE} (sid, value, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')`, [
      id,
      JSON.stringify(data),
      ttl,
    ]);
    ctx.cookies.set(COOKIE, id, { signed: false, httpOnly: true, sameSite: 'lax', maxAge: ttl });
  };
  const app = koaApp({
    ops: {
      async fresh(ctx) {
        await create(ctx, { count: 1 });
      },
      async rmw(ctx) {
        const sid = sidOf(ctx);
        const loaded = await load(sid);
        const count = (countOf(loaded) ?? 0) + 1;
        if (!loaded) await create(ctx, { count });
        else
          await pool.query(`UPDATE ${TABLE} SET value = $2, expires_at = now() + $3 * interval '1 millisecond' WHERE sid = $1`, [
            sid,
            JSON.stringify({ ...loaded, count }),
            ttl,
          ]);
        return count;
      },
      async read(ctx) {
        return countOf(await load(sidOf(ctx)));
      },
    },
  });
  return { listener: app.callback(), close: () => pool.end() };
};
