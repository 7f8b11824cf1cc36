/**
 * Type-level checks, compiled by `tsc --noEmit` in `npm test` (never run).
 * A line with @ts-expect-error fails the build if it stops being an error.
 */
import Koa from 'koa';
import { session, type SessionHandle, type LockedSession } from '../../src/index.js';

declare module '../../src/index.js' {
  interface SessionData {
    typedCount?: number;
    typedUser?: { id: string };
  }
}

const app = new Koa();
app.use(session());
app.use(session<{ items?: string[] }>({ name: 'typedCart' }));

app.use(async (ctx) => {
  // Augmented SessionData: ctx.session is typed without casts.
  const n: number = await ctx.session.withLock((s) => (s.typedCount = (s.typedCount ?? 0) + 1));
  // withLock returns fn's result type.
  const label: string = await ctx.session.withLock(async () => 'x');
  // @ts-expect-error: unknown keys are not part of SessionData
  await ctx.session.withLock((s) => s.notDeclared);

  const snap = await ctx.session.get();
  const id: string | undefined = snap.typedUser?.id;
  // @ts-expect-error: the get() snapshot is read-only
  snap.typedCount = 2;

  {
    await using s: LockedSession = await ctx.session.lock();
    s.typedCount = 3;
  }

  // @ts-expect-error: the handle is not the data; the user is `await ctx.session.currentUser()` (issue 20 item 5)
  if (ctx.session.user) void 0;
  // @ts-expect-error: data is read with get() or inside withLock
  void ctx.session.typedCount;
  // @ts-expect-error: a delete cannot be refused at run time, so TypeScript refuses it
  delete ctx.session.typedCount;
  const who: { id: string } | undefined = (await ctx.session.currentUser()) as { id: string } | undefined;
  void who;
  const sid: string | undefined = ctx.session.id;
  const fresh: boolean = ctx.session.isNew;
  void [n, label, id, sid, fresh];
});

declare module 'koa' {
  interface ExtendableContext {
    typedCart: SessionHandle<{ items?: string[] }>;
  }
}

app.use(async (ctx) => {
  await ctx.typedCart.withLock((c) => void (c.items = ['a']));
  // @ts-expect-error: items is a string[]
  await ctx.typedCart.withLock((c) => void (c.items = [1]));
});

// Options are typed.
// @ts-expect-error: sameSite takes 'strict' | 'lax' | 'none' | false
session({ cookie: { sameSite: 'sometimes' } });
// @ts-expect-error: ttl is a number of ms
session({ ttl: '1d' });
