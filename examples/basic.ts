/**
 * The smallest app: a per-visitor counter on the embedded memory store.
 * Run: npm start, then open http://localhost:3000 (or PORT).
 */
import Koa from 'koa';
import { session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

export const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];

app.use(session());

app.use(async (ctx) => {
  if (ctx.path === '/favicon.ico') return;
  if (ctx.path === '/reset') {
    await ctx.session.destroy();
    ctx.redirect('/');
    return;
  }
  // Read-modify-write under the session lock: parallel requests never lose an increment.
  const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
  ctx.body = { count, id: ctx.session.id };
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, '127.0.0.1', () => console.log(`basic example on http://localhost:${port}`));
}
