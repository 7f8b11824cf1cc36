/**
 * Metrics from diagnostics_channel: lock wait time, store latency per store,
 * mirror errors. Run: npx tsx examples/diagnostics.ts, then hit
 * http://localhost:3000 a few times (e.g. in parallel) and watch the log.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import Koa from 'koa';
import { CHANNELS, MemoryStore, session, type LockMessage, type MirrorErrorMessage, type StoreMessage } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    hits?: number;
  }
}

diagnostics_channel.subscribe(CHANNELS.lock, (m) => {
  const { session: name, locker, waitMs, outcome } = m as LockMessage;
  console.log(`[lock]  ${name} ${locker} ${outcome} after ${waitMs.toFixed(2)} ms`);
});
diagnostics_channel.subscribe(CHANNELS.store, (m) => {
  const { store, role, op, durationMs, error } = m as StoreMessage;
  console.log(`[store] ${store} (${role}) ${op} ${durationMs.toFixed(2)} ms${error ? ' FAILED' : ''}`);
});
diagnostics_channel.subscribe(CHANNELS.mirrorError, (m) => {
  const { store, op, error } = m as MirrorErrorMessage;
  console.log(`[mirror-error] ${store} ${op}: ${(error as Error).message}`);
});

// A mirror that always fails, to show mirror errors (the requests still succeed).
const flaky = {
  name: 'flaky-mirror',
  get: async () => undefined,
  set: async () => {
    throw new Error('mirror down');
  },
  destroy: async () => undefined,
};

export const app = new Koa();
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];
app.use(session({ master: new MemoryStore(), mirrors: [flaky] }));
app.use(async (ctx) => {
  ctx.body = { hits: await ctx.session.withLock((s) => (s.hits = (s.hits ?? 0) + 1)) };
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, '127.0.0.1', () => console.log(`diagnostics example on http://localhost:${port}`));
}
