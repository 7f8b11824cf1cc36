/**
 * The whole session in the client's cookie: CookieStore as the master.
 * No server-side storage; the cookie is sealed with AES-256-GCM (the client can
 * neither read nor change it) and carries its own expiry.
 *
 * Run: npx tsx examples/cookie.ts, then open http://localhost:3000 (or PORT).
 *   GET /            count a visit and show the session
 *   GET /add?item=x  add an item to the cart
 *   GET /peek        read the session without the lock (no write, no cookie)
 *   GET /too-big     try to store more than a cookie can hold (413, nothing sent)
 *   GET /reset       destroy the session (clears the cookie)
 *
 * Keys: SESSION_KEYS is a comma-separated list, newest first (the first seals,
 * all open). Generate one with `openssl rand -base64 32`. To rotate, put a new key
 * first and keep the old one until cookies sealed with it have expired (the ttl).
 */
import Koa from 'koa';
import { CookieStore, CookieTooLargeError, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    cart?: string[];
    blob?: string;
  }
}

// ⚠️ DEV ONLY fallback: anyone who reads this file can forge and read these cookies.
const DEV_ONLY_KEY = 'dev-only-cookie-key-do-not-use-in-production!';
const keys =
  process.env.SESSION_KEYS?.split(',')
    .map((k) => k.trim())
    .filter(Boolean) ?? [];
if (keys.length === 0) {
  if (process.env.NODE_ENV === 'production') {
    throw new Error('SESSION_KEYS is not set: generate a key with `openssl rand -base64 32`');
  }
  keys.push(DEV_ONLY_KEY);
}

export const app = new Koa();
// Behind a TLS-terminating proxy, trust X-Forwarded-Proto so the cookie gets `Secure` (secure: 'auto').
app.proxy = process.env.TRUST_PROXY === '1';

app.use(
  session({
    master: new CookieStore({ keys, cookie: { name: 'app.session' } }),
    ttl: 7 * 24 * 3600_000, // sealed expiry and cookie Max-Age: one week, renewed by every save
  }),
);

app.use(async (ctx) => {
  switch (ctx.path) {
    case '/favicon.ico':
      return;
    case '/reset':
      await ctx.session.destroy();
      ctx.redirect('/');
      return;
    case '/add': {
      const item = String(ctx.query.item ?? 'apple').slice(0, 40);
      // Cookie bytes are scarce (≈ 4 KB): keep the cart short, ids only.
      const cart = await ctx.session.withLock((s) => (s.cart = [...(s.cart ?? []), item].slice(-20)));
      ctx.body = { cart };
      return;
    }
    case '/peek':
      ctx.body = await ctx.session.get();
      return;
    case '/too-big':
      try {
        await ctx.session.withLock((s) => void (s.blob = 'x'.repeat(5000)));
      } catch (error) {
        if (!(error instanceof CookieTooLargeError)) throw error;
        ctx.status = 413;
        ctx.body = { error: 'that does not fit in a cookie; keep large data in a server-side store', size: error.size };
      }
      return;
    default: {
      // Read-modify-write under the session lock (keyed by the id sealed in the cookie).
      const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
      ctx.body = { count, id: ctx.session.id, data: await ctx.session.get() };
    }
  }
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3000);
  if (keys[0] === DEV_ONLY_KEY) console.warn('cookie example: using the DEV ONLY key; set SESSION_KEYS in production');
  app.listen(port, '127.0.0.1', () => console.log(`cookie example on http://localhost:${port}`));
}
