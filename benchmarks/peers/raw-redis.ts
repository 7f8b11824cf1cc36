/**
 * The store floor: Koa plus the fewest raw Redis commands each route needs,
 * through one node-redis client, with an unsigned `sid` cookie and JSON.
 *
 * | route        | commands                          |
 * | ------------ | --------------------------------- |
 * | `/fresh`     | `SET sid value PX ttl`            |
 * | `/rmw`       | `GET sid`, then `SET sid … PX`    |
 * | `/read`      | `GET sid`                         |
 * | `/untouched` | none                              |
 *
 * No lock, no signature, no expiry check on read beyond Redis's own: this is
 * what a session costs at the very least, not a usable session. It loses
 * concurrent updates like every unlocked read-modify-write.
 *
 * Two clients: {@link rawRedis} with node-redis's defaults (a client-wide 5 s
 * command timeout, i.e. an `AbortSignal.timeout()` per command), and
 * {@link rawRedisNoTimeout} with that timeout off (`commandOptions: { timeout: 0 }`),
 * the honest physical floor of one GET + one SET on loopback.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { createClient } from 'redis';
import type { VariantFactory } from '../lib/types.js';
import { koaApp, countOf } from '../lib/routes.js';

const COOKIE = 'sid';

function sidOf(ctx: Context): string | undefined {
  const sid = ctx.cookies.get(COOKIE, { signed: false });
  return sid && /^[A-Za-z0-9_-]{43}$/.test(sid) ? sid : undefined;
}

export const rawRedis: VariantFactory = (env) => rawRedisWith(env, true);
export const rawRedisNoTimeout: VariantFactory = (env) => rawRedisWith(env, false);

async function rawRedisWith(env: Parameters<VariantFactory>[0], defaultTimeout: boolean): ReturnType<VariantFactory> {
  // `timeout: 0` is falsy in node-redis 6's command queue: no AbortSignal.timeout() per command.
  const client = createClient({ url: env.servers.redis!, ...(defaultTimeout ? {} : { commandOptions: { timeout: 0 } }) });
  client.on('error', () => {});
  await client.connect();
  const ttl = env.ttlMs;
  const key = (sid: string) => `raw:${sid}`;
  const save = async (ctx: Context, sid: string | undefined, data: object): Promise<void> => {
    const id = sid ?? randomBytes(32).toString('base64url');
    await client.set(key(id), JSON.stringify(data), { expiration: { type: 'PX', value: ttl } });
    if (!sid) ctx.cookies.set(COOKIE, id, { signed: false, httpOnly: true, sameSite: 'lax', maxAge: ttl });
  };
  const load = async (sid: string | undefined): Promise<Record<string, unknown> | undefined> => {
    if (!sid) return undefined;
    const raw = await client.get(key(sid));
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
  };
  const app = koaApp({
    ops: {
      async fresh(ctx) {
        await save(ctx, undefined, { count: 1 });
      },
      async rmw(ctx) {
        const sid = sidOf(ctx);
        const loaded = await load(sid);
        const count = (countOf(loaded) ?? 0) + 1;
        // A sid whose record is gone gets a new one, as a real session would.
        await save(ctx, loaded ? sid : undefined, { ...loaded, count });
        return count;
      },
      async read(ctx) {
        return countOf(await load(sidOf(ctx)));
      },
    },
  });
  return { listener: app.callback(), close: async () => void (await client.quit()) };
}
