/**
 * No silent footguns, reads (issue 20, item 5): code written for koa-session's
 * `ctx.session` object must fail loudly on the handle, not read `undefined` or,
 * worse, a truthy method. `if (ctx.session.user)` let every anonymous request in
 * while `user` was a method of the handle. Reads of names the handle does not
 * have throw a TypeError naming `get()` / `currentUser()`; koa-session's
 * `maxAge`, `save()` and `ctx.sessionOptions` name their counterparts; and what
 * Node, Koa and test tools probe on any object (`then`, symbols, util.inspect,
 * deep equality, JSON of ctx) keeps working.
 */
import assert from 'node:assert/strict';
import { Console } from 'node:console';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import util from 'node:util';
import Koa from 'koa';
import koaSessionMiddleware from 'koa-session';
import request from 'supertest';
import { MemoryStore, requireLogin, session, SessionHandle, type SessionOptions } from '../src/index.js';
import { cookieHeader } from './helpers/app.js';

interface CartData {
  items?: string[];
}

declare module 'koa' {
  interface ExtendableContext {
    readsCart: SessionHandle<CartData>;
    locked: SessionHandle;
  }
}

/** Runs `body` with `ctx` in sloppy mode (JavaScript written for koa-session, unchecked by TypeScript). */
const sloppy = (body: string) => new Function('ctx', body) as (ctx: unknown) => unknown;

/** An app whose errors are collected (Koa answers a plain 500 and emits the error). */
function appWith(options: SessionOptions, routes: Koa.Middleware): { server: ReturnType<Koa['callback']>; errors: Error[] } {
  const app = new Koa();
  app.keys = ['test-key'];
  app.silent = true;
  const errors: Error[] = [];
  app.on('error', (error: Error) => errors.push(error));
  app.use(session({ master: new MemoryStore(), ...options }));
  app.use(routes);
  return { server: app.callback(), errors };
}

/** The TypeError message `code` throws, or a description of what it did instead. */
function thrown(code: () => unknown): string {
  try {
    const value = code();
    return `no error (got ${util.inspect(value)})`;
  } catch (error) {
    return error instanceof TypeError ? error.message : `not a TypeError: ${String(error)}`;
  }
}

describe('reads of the session handle', () => {
  it('`if (ctx.session.user)` on an anonymous request is a 500 naming currentUser() and get(), never a way in', async () => {
    const { server, errors } = appWith({}, async (ctx) => {
      if (sloppy('return ctx.session.user')(ctx)) {
        ctx.body = 'the admin page';
        return;
      }
      ctx.body = 'please log in';
    });
    const res = await request(server).get('/admin');
    assert.equal(res.status, 500);
    assert.notEqual(res.text, 'the admin page');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof TypeError);
    assert.match(errors[0].message, /ctx\.session\.user is not session data/);
    assert.match(errors[0].message, /await ctx\.session\.currentUser\(\)/);
    assert.match(errors[0].message, /\(await ctx\.session\.get\(\)\)\.user/);
  });

  it('a logged-in user is read with currentUser() (requireLogin too), and ctx.session.user still throws', async () => {
    const guard = requireLogin();
    const { server } = appWith({}, async (ctx) => {
      if (ctx.path === '/login') {
        await ctx.session.login({ id: '42', name: 'Ada' });
        ctx.body = 'ok';
        return;
      }
      if (ctx.path === '/account') return guard(ctx, async () => void (ctx.body = 'account'));
      ctx.body = { user: (await ctx.session.currentUser()) ?? null, property: thrown(() => sloppy('return ctx.session.user')(ctx)) };
    });
    const anonymous = await request(server).get('/me');
    assert.equal(anonymous.body.user, null);
    assert.equal((await request(server).get('/account')).status, 401);
    const login = await request(server).get('/login');
    const cookie = cookieHeader(login.headers['set-cookie']);
    const res = await request(server).get('/me').set('Cookie', cookie);
    assert.deepEqual(res.body.user, { id: '42', name: 'Ada' });
    assert.match(res.body.property, /currentUser\(\)/);
    assert.equal((await request(server).get('/account').set('Cookie', cookie)).text, 'account');
  });

  it('data-like reads throw a TypeError naming get(), for a new and an existing session', async () => {
    const READS: Array<[string, RegExp]> = [
      [
        'return ctx.session.views',
        /ctx\.session\.views is not session data.*\(await ctx\.session\.get\(\)\)\.views.*withLock\(\(s\) => s\.views\)/,
      ],
      ['return (ctx.session.views || 0) + 1', /ctx\.session\.views is not session data/],
      ['return ctx.session.populated', /ctx\.session\.populated is not session data.*get\(\)/],
      ['return ctx.session.length', /ctx\.session\.length is not session data/],
      ['return ctx.session.isAdmin === true', /ctx\.session\.isAdmin is not session data/],
      ['return JSON.stringify(ctx.session)', /JSON\.stringify\(ctx\.session\).*handle, not the session data.*await ctx\.session\.get\(\)/],
      ['return ctx.session.toJSON()', /JSON\.stringify\(ctx\.session\).*await ctx\.session\.get\(\)/],
    ];
    const { server } = appWith({}, async (ctx) => {
      if (ctx.path === '/inc') {
        ctx.body = await ctx.session.withLock((s) => (s.views = ((s.views as number | undefined) ?? 0) + 1));
        return;
      }
      ctx.body = READS.map(([code]) => thrown(() => sloppy(code)(ctx)));
    });
    const first = await request(server).get('/inc');
    const cookie = cookieHeader(first.headers['set-cookie']);
    for (const headers of [{}, { Cookie: cookie }]) {
      const res = await request(server).get('/read').set(headers);
      assert.equal(res.status, 200);
      READS.forEach(([code, message], i) => assert.match(res.body[i], message, code));
    }
    const after = await request(server).get('/inc').set('Cookie', cookie);
    assert.equal(after.body, 2, 'the refused reads changed nothing');
  });

  it('`ctx.body = ctx.session` is a 500 naming get(), not `{}`', async () => {
    const { server, errors } = appWith({}, (ctx) => {
      ctx.body = ctx.session;
    });
    const res = await request(server).get('/');
    assert.equal(res.status, 500);
    assert.notEqual(res.text, '{}');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /ctx\.session is a handle, not the session data; serialise the data, `await ctx\.session\.get\(\)`/);
  });

  it("koa-session's maxAge names login(user, { ttl, remember }) and cookie.maxAge; save() and manuallyCommit() name withLock", async () => {
    const CASES: Array<[string, RegExp]> = [
      ['ctx.session.maxAge = 60000', /ctx\.session\.maxAge = … does nothing: .*login\(user, \{ ttl, remember \}\).*`cookie\.maxAge`/],
      ['"use strict"; ctx.session.maxAge = "session"', /ctx\.session\.maxAge = … does nothing: .*login\(user, \{ ttl, remember \}\)/],
      ['return ctx.session.maxAge', /ctx\.session\.maxAge does not exist: .*login\(user, \{ ttl, remember \}\).*`cookie\.maxAge`/],
      [
        'return ctx.session.save()',
        /ctx\.session\.save\(\) does not exist: a change is saved when its lock scope ends.*withLock.*touch\(\)/,
      ],
      ['return ctx.session.manuallyCommit()', /ctx\.session\.manuallyCommit\(\) does not exist:.*withLock/],
    ];
    const { server } = appWith({}, (ctx) => {
      ctx.body = CASES.map(([code]) => thrown(() => sloppy(code)(ctx)));
    });
    const res = await request(server).get('/');
    CASES.forEach(([code, message], i) => {
      assert.match(res.body[i], message, code);
      if (code.includes('maxAge')) assert.doesNotMatch(res.body[i], /withLock/, `${code}: the fix is not withLock`);
    });
  });

  it("ctx.sessionOptions (koa-session's per-request options) names session({ ... }) and the cookie options; `in` checks still answer", async () => {
    const CASES = [
      'return ctx.sessionOptions',
      'ctx.sessionOptions.maxAge = 1000',
      'ctx.sessionOptions = {}',
      '"use strict"; ctx.sessionOptions = {}',
    ];
    const { server } = appWith({}, (ctx) => {
      ctx.body = {
        errors: CASES.map((code) => thrown(() => sloppy(code)(ctx))),
        probes: [
          'sessionOptions' in ctx,
          'session' in ctx,
          Object.keys(ctx).includes('sessionOptions'),
          'sessionOptions' in JSON.parse(JSON.stringify(ctx)),
        ],
      };
    });
    const res = await request(server).get('/');
    for (const [i, code] of CASES.entries()) {
      assert.match(
        res.body.errors[i],
        /ctx\.sessionOptions \(koa-session's per-request options\) does not exist: options are fixed per `session\(\{ \.\.\. \}\)` \(the cookie's under `cookie: \{ maxAge/,
        code,
      );
      assert.match(res.body.errors[i], /login\(user, \{ ttl, remember \}\)/, code);
    }
    assert.deepEqual(res.body.probes, [true, true, false, false]);
  });

  it('a ctx.sessionOptions defined by koa-session on the same app is left alone', async () => {
    const app = new Koa();
    app.keys = ['test-key'];
    app.use(koaSessionMiddleware({ maxAge: 1234 }, app));
    app.use(session({ name: 'locked', master: new MemoryStore() }));
    app.use(async (ctx) => {
      await ctx.locked.withLock((s) => void (s.n = 1));
      ctx.body = { maxAge: (ctx.sessionOptions as { maxAge?: unknown }).maxAge, locked: await ctx.locked.get() };
    });
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { maxAge: 1234, locked: { n: 1 } });
  });

  it('a named session gets the same protection, with its own name in the message', async () => {
    const { server } = appWith({ name: 'readsCart' }, (ctx) => {
      ctx.body = [
        thrown(() => sloppy('return ctx.readsCart.items')(ctx)),
        thrown(() => sloppy('return ctx.readsCart.user')(ctx)),
        thrown(() => sloppy('ctx.readsCart.maxAge = 1')(ctx)),
        thrown(() => JSON.stringify(ctx.readsCart)),
      ];
    });
    const res = await request(server).get('/');
    assert.match(res.body[0], /ctx\.readsCart\.items is not session data.*\(await ctx\.readsCart\.get\(\)\)\.items/);
    assert.match(res.body[1], /await ctx\.readsCart\.currentUser\(\)/);
    assert.match(res.body[2], /ctx\.readsCart\.maxAge = … does nothing: .*ctx\.readsCart\.login\(user/);
    assert.match(res.body[3], /JSON\.stringify\(ctx\.readsCart\)/);
  });

  it('what Node, Koa and test tools probe keeps working: await, util.inspect, console.log, deep equality, ctx.inspect()/toJSON, symbols', async () => {
    const { server, errors } = appWith({}, async (ctx) => {
      const handle = ctx.session;
      const awaited = await (handle as unknown as Promise<unknown>);
      const returned = await (async () => handle)();
      const resolved = await Promise.resolve(handle);
      const out = new PassThrough();
      let logged = '';
      out.on('data', (chunk) => (logged += String(chunk)));
      new Console(out).log(handle);
      new Console(out).log({ session: handle });
      assert.deepEqual(handle, handle);
      assert.notDeepStrictEqual(handle, {});
      ctx.body = {
        same: [awaited, returned, resolved].every((value) => value === handle),
        inspect: util.inspect(handle, { showHidden: true, depth: 4 }),
        logged,
        ctxInspect: typeof util.inspect(ctx),
        ctxJson: Object.keys(ctx.toJSON()).sort(),
        ctxInspectJson: JSON.stringify(ctx.inspect()).length > 0,
        then: typeof (handle as unknown as { then?: unknown }).then,
        string: String(handle),
        template: `${handle}`,
        symbols: [Symbol.toPrimitive, Symbol.asyncDispose, Symbol.iterator, util.inspect.custom, Symbol('mine')].map(
          (key) => typeof (handle as unknown as Record<symbol, unknown>)[key],
        ),
        objectMembers: [
          handle.constructor === SessionHandle,
          Object.hasOwn(handle, 'id'),
          Object.hasOwn(handle, 'x'),
          handle instanceof SessionHandle,
          Object.getPrototypeOf(handle) === SessionHandle.prototype,
        ],
        inChecks: ['user' in handle, 'views' in handle, 'withLock' in handle, 'currentUser' in handle],
        members: { id: handle.id ?? null, isNew: handle.isNew },
        keys: Object.keys(handle),
        clone: structuredClone(handle),
      };
    });
    const res = await request(server).get('/');
    assert.equal(res.status, 200, util.inspect(errors));
    assert.equal(res.body.same, true);
    assert.match(res.body.inspect, /^SessionHandle \{/);
    assert.match(res.body.logged, /SessionHandle \{\}\n\{ session: SessionHandle \{\} \}\n/);
    assert.equal(res.body.ctxInspect, 'string');
    assert.deepEqual(res.body.ctxJson, ['app', 'originalUrl', 'req', 'request', 'res', 'response', 'socket']);
    assert.equal(res.body.ctxInspectJson, true);
    assert.equal(res.body.then, 'undefined');
    assert.equal(res.body.string, '[object Object]');
    assert.equal(res.body.template, '[object Object]');
    assert.deepEqual(res.body.symbols, ['undefined', 'undefined', 'undefined', 'undefined', 'undefined']);
    assert.deepEqual(res.body.objectMembers, [true, false, false, true, true]);
    assert.deepEqual(res.body.inChecks, [false, false, true, true]);
    assert.deepEqual(res.body.members, { id: null, isNew: true });
    assert.deepEqual(res.body.keys, []);
    assert.deepEqual(res.body.clone, {});
    assert.equal(errors.length, 0);
  });

  it('auth.legacyUserMethod keeps user() for one release, with one DeprecationWarning per process', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => {
      if ((warning as { code?: string }).code === 'KOA_LOCKED_SESSION_USER') warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const { server } = appWith({ auth: { legacyUserMethod: true } }, async (ctx) => {
        if (ctx.path === '/login') {
          await ctx.session.login({ id: '7', name: 'Bo' });
          ctx.body = 'ok';
          return;
        }
        const legacy = ctx.session as unknown as { user(): Promise<unknown> };
        ctx.body = { user: (await legacy.user()) ?? null };
      });
      const login = await request(server).get('/login');
      const cookie = cookieHeader(login.headers['set-cookie']);
      assert.deepEqual((await request(server).get('/me').set('Cookie', cookie)).body, { user: { id: '7', name: 'Bo' } });
      assert.deepEqual((await request(server).get('/me')).body, { user: null });
      await new Promise<void>((resolve) => setImmediate(resolve)); // process 'warning' is emitted on the next tick
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.name, 'DeprecationWarning');
      assert.match(warnings[0]!.message, /currentUser\(\)/);
    } finally {
      process.off('warning', onWarning);
    }
    assert.throws(
      () => session({ auth: { legacyUserMethod: 'yes' as unknown as boolean } }),
      /Expected `auth\.legacyUserMethod` to be a boolean, got `"yes"`/,
    );
  });
});
