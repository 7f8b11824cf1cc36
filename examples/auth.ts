/**
 * Login, a protected page, logout, and "sign out my other devices".
 *
 * Run: npx tsx examples/auth.ts, then open http://localhost:3000 (or PORT).
 * With REDIS_URL set, sessions and locks live in Redis.
 *   GET  /          public page: who am I?
 *   GET  /login     a login form (any user name, password "secret")
 *   POST /login     log in (remember me: a persistent cookie; otherwise a browser-session cookie)
 *   GET  /account   protected: 401 (JSON clients) or a redirect to /login (browsers) when logged out
 *   POST /increment protected counter (under the session lock: parallel requests never lose one)
 *   POST /logout    log out (the old cookie stops working everywhere)
 *   POST /logout-others  end this user's sessions on every other device
 */
import Koa, { type Context } from 'koa';
import { createClient } from 'redis';
import { RedisLocker, RedisStore, requireLogin, session } from '../src/index.js';

interface User {
  id: string;
  name: string;
}

declare module '../src/index.js' {
  interface SessionData {
    user?: User;
    count?: number;
  }
}

export const app = new Koa();
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];
// Behind a TLS-terminating proxy: trust X-Forwarded-Proto, so cookies get Secure.
app.proxy = process.env.TRUST_PROXY === '1';

// REDIS_URL set: sessions and locks in Redis (several processes can serve them); else the embedded memory store.
const redis = process.env.REDIS_URL ? await createClient({ url: process.env.REDIS_URL }).connect() : undefined;
app.use(
  session({
    ttl: 30 * 24 * 3600_000, // remember-me sessions last up to 30 days
    ...(redis ? { master: new RedisStore({ client: redis }), locker: new RedisLocker({ client: redis }) } : {}),
  }),
);

async function form(ctx: Context): Promise<string> {
  const raw = await new Promise<string>((resolve, reject) => {
    let body = '';
    ctx.req.setEncoding('utf8');
    ctx.req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 10_000) reject(Object.assign(new Error('form too large'), { status: 413, expose: true }));
    });
    ctx.req.on('end', () => resolve(body));
    ctx.req.on('error', reject);
  });
  return raw;
}

const page = (title: string, body: string) => `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1>${body}`;
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const protect = requireLogin({
  onUnauthorized: (ctx) => (ctx.accepts('html', 'json') === 'html' ? ctx.redirect('/login') : ctx.throw(401, 'Login required')),
});

app.use(async (ctx, next) => {
  if (ctx.path === '/' && ctx.method === 'GET') {
    const user = await ctx.session.currentUser();
    ctx.body = page(
      'Home',
      user ? `<p>Hello ${escape(user.name)}. <a href="/account">Your account</a></p>` : '<p><a href="/login">Log in</a></p>',
    );
    return;
  }
  if (ctx.path === '/login' && ctx.method === 'GET') {
    ctx.body = page(
      'Log in',
      `<form method="post" action="/login">
      <label>Name <input name="name" autocomplete="username"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password"></label>
      <label><input type="checkbox" name="remember" value="1"> Remember me</label>
      <button>Log in</button></form>`,
    );
    return;
  }
  if (ctx.path === '/login' && ctx.method === 'POST') {
    const fields = new URLSearchParams(await form(ctx));
    const name = fields.get('name')?.trim() ?? '';
    if (!name || fields.get('password') !== 'secret') {
      ctx.status = 401;
      ctx.body = page('Log in', '<p>Wrong name or password. <a href="/login">Try again</a></p>');
      return;
    }
    // A new sid (session-fixation defence); remember me → persistent cookie, else a browser-session cookie.
    await ctx.session.login({ id: name.toLowerCase(), name }, { remember: fields.get('remember') === '1' });
    ctx.redirect('/account');
    return;
  }
  return next();
});

app.use(async (ctx, next) => {
  if (ctx.path === '/logout' && ctx.method === 'POST') {
    await ctx.session.logout();
    ctx.redirect('/');
    return;
  }
  return next();
});

// Everything below needs a logged-in user.
app.use(protect);

app.use(async (ctx) => {
  const user = (await ctx.session.currentUser())!;
  if (ctx.path === '/increment' && ctx.method === 'POST') {
    ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    return;
  }
  if (ctx.path === '/logout-others' && ctx.method === 'POST') {
    ctx.body = { revoked: (await ctx.session.revokeAll(user, { except: ctx.session.id! })).length };
    return;
  }
  if (ctx.path === '/account') {
    const { count = 0 } = await ctx.session.get();
    const devices = (await ctx.session.sessionsOf(user)).length;
    ctx.body = page(
      'Account',
      `<p>Logged in as ${escape(user.name)} on ${devices} device(s). Counter: <span id="count">${count}</span></p>
      <form method="post" action="/logout-others"><button>Sign out other devices</button></form>
      <form method="post" action="/logout"><button>Log out</button></form>`,
    );
    return;
  }
  ctx.status = 404;
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, '127.0.0.1', () => console.log(`auth example on http://localhost:${port}`));
}
