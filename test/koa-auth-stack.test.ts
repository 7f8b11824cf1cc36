/**
 * The Koa auth stack, unchanged (issue 21): koa-passport + passport-local, koa-csrf,
 * @koa/router and @koa/bodyparser, on plainSession(), driven over HTTP through
 * examples/passport.ts. On MemoryStore and a CookieStore master in-process, and on
 * RedisStore + RedisLocker with the example running as two processes that share one
 * Redis (every other request goes to the other process).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../examples/passport.js';
import { CookieStore, MemoryStore, type SessionOptions } from '../src/index.js';
import { listen } from './helpers/app.js';
import { CookieJar } from './helpers/cookies.js';
import { startExample } from './helpers/examples.js';
import { redisServer } from './helpers/servers.js';

interface Backend {
  /** Base URLs of the processes serving the app (requests alternate between them). */
  urls: string[];
  /** A server-side master: the user index (sessionsOf) and exact parallel counts apply. */
  serverSide: boolean;
  stop(): Promise<void>;
}

let turn = 0;
/** A browser tab: its own jar unless given one (two tabs of one browser share it). */
class Tab {
  constructor(
    readonly backend: Backend,
    readonly jar = new CookieJar(),
  ) {}
  async fetch(path: string, init: RequestInit & { form?: Record<string, string>; csrf?: string } = {}): Promise<Response> {
    const url = this.backend.urls[turn++ % this.backend.urls.length]!;
    const headers = new Headers(init.headers);
    if (this.jar.header) headers.set('cookie', this.jar.header);
    if (init.csrf !== undefined) headers.set('x-csrf-token', init.csrf);
    let body = init.body;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url + path, { ...init, headers, body: body ?? null, redirect: 'manual' });
    this.jar.take(res);
    return res;
  }
  async whoami(): Promise<{ user: { name: string } | null; authenticated: boolean; count: number; cart: string[]; csrf: string }> {
    const res = await this.fetch('/whoami', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 200);
    return (await res.json()) as never;
  }
  /** The login form's CSRF token (hidden field). */
  async loginToken(): Promise<string> {
    const res = await this.fetch('/login');
    assert.equal(res.status, 200);
    const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1];
    assert.ok(token, 'the login form carries a CSRF token');
    return token;
  }
  async login(name = 'Ada'): Promise<Response> {
    const token = await this.loginToken();
    return this.fetch('/login', { method: 'POST', form: { username: name, password: 'secret', _csrf: token } });
  }
}

async function inProcess(options: SessionOptions, serverSide: boolean): Promise<Backend> {
  const app = createApp(options);
  app.silent = true;
  const server = await listen(app);
  return { urls: [server.url], serverSide, stop: () => server.close() };
}

const redis = await redisServer();
after(() => redis?.stop());

const backends: Array<[string, () => Promise<Backend>]> = [
  ['MemoryStore', () => inProcess({ master: new MemoryStore() }, true)],
  ['CookieStore master', () => inProcess({ master: new CookieStore({ keys: ['a cookie store key of at least 32 chars!'] }) }, false)],
  [
    'RedisStore + RedisLocker, two processes',
    async () => {
      if (!redis) throw new Error('redis-server is needed for this test');
      const a = await startExample('passport', { REDIS_URL: redis.url });
      const b = await startExample('passport', { REDIS_URL: redis.url });
      return { urls: [a.url, b.url], serverSide: true, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
    },
  ],
];

for (const [label, start] of backends) {
  describe(`koa-passport + passport-local + koa-csrf on plainSession(): ${label}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await start();
    });
    after(() => backend.stop());

    it('koa-csrf: a POST without a token or with a forged one is refused (403); the issued one is accepted', async () => {
      const tab = new Tab(backend);
      const token = await tab.loginToken();
      const none = await tab.fetch('/login', { method: 'POST', form: { username: 'Ada', password: 'secret' } });
      assert.equal(none.status, 403);
      const forged = await tab.fetch('/login', {
        method: 'POST',
        form: { username: 'Ada', password: 'secret', _csrf: `${token.slice(0, -4)}AAAA` },
      });
      assert.equal(forged.status, 403);
      assert.equal((await tab.whoami()).authenticated, false);
      const ok = await tab.fetch('/login', { method: 'POST', form: { username: 'Ada', password: 'secret', _csrf: token } });
      assert.equal(ok.status, 302);
      assert.equal(ok.headers.get('location'), '/account');
    });

    it('login moves to a new sid (the old one is dead), the session is restored on the next request, logout ends it', async () => {
      const tab = new Tab(backend);
      await tab.loginToken();
      const anonymous = new CookieJar();
      anonymous.take(tab.jar.header.split('; ').map((pair) => `${pair}; Path=/`));
      const login = await tab.login();
      assert.equal(login.status, 302);
      if (backend.serverSide) assert.notEqual(tab.jar.get('sid'), anonymous.get('sid'), 'a new sid after login (fixation defence)');

      const account = await tab.fetch('/account');
      assert.equal(account.status, 200);
      assert.match(
        await account.text(),
        /Logged in as <span id="name">Ada<\/span> \(isAuthenticated: true\)/,
        'requireLogin and ctx.isAuthenticated() agree',
      );
      const me = await tab.whoami();
      assert.deepEqual([me.authenticated, me.user?.name], [true, 'Ada']);

      // The pre-login cookie (an attacker's planted sid) is not logged in.
      // (Right after the move its old sid answers a retryable 409 — the moved-session tombstone — then nothing.)
      const planted = await new Tab(backend, anonymous).fetch('/whoami', { headers: { accept: 'application/json' } });
      assert.ok(
        planted.status === 409 || !((await planted.json()) as { authenticated: boolean }).authenticated,
        'the planted sid is not logged in',
      );

      // Another tab of the same browser sees the login.
      const otherTab = new Tab(backend, tab.jar);
      assert.equal((await otherTab.whoami()).user?.name, 'Ada');

      const beforeLogout = tab.jar.header;
      const logout = await tab.fetch('/logout', { method: 'POST', csrf: me.csrf });
      assert.equal(logout.status, 302);
      assert.equal((await tab.whoami()).authenticated, false);
      const old = new Tab(backend, new CookieJar());
      old.jar.take(beforeLogout.split('; ').map((pair) => `${pair}; Path=/`));
      if (backend.serverSide) {
        // Server-side: the logged-in sid is gone, so its cookie no longer logs anyone in.
        assert.equal((await old.whoami()).authenticated, false, 'the logged-in cookie no longer works after logout');
        const protectedPage = await old.fetch('/account');
        assert.equal(protectedPage.status, 302, 'requireLogin sends it to /login');
      }
    });

    it('the user index sees passport logins: sessionsOf counts devices, logout unlists', { skip: false }, async (t) => {
      if (!backend.serverSide) return t.skip('a CookieStore master keeps no user index');
      const laptop = new Tab(backend);
      const phone = new Tab(backend);
      assert.equal((await laptop.login('Grace')).status, 302);
      assert.equal((await phone.login('Grace')).status, 302);
      const devices = async (tab: Tab) => ((await (await tab.fetch('/devices')).json()) as { sessions: number }).sessions;
      assert.equal(await devices(laptop), 2);
      const { csrf } = await phone.whoami();
      assert.equal((await phone.fetch('/logout', { method: 'POST', csrf })).status, 302);
      assert.equal(await devices(laptop), 1);
    });

    it('100 parallel ctx.session.count += 1 of one logged-in user end at exactly 100', async (t) => {
      if (!backend.serverSide)
        return t.skip('parallel requests carrying one sealed cookie each write their own copy (see docs/koa-auth-stack.md)');
      const tab = new Tab(backend);
      await tab.login('Ada');
      const { csrf } = await tab.whoami();
      const responses = await Promise.all(Array.from({ length: 100 }, () => tab.fetch('/increment', { method: 'POST', csrf })));
      assert.deepEqual(
        responses.map((r) => r.status).filter((s) => s !== 200),
        [],
      );
      assert.equal((await tab.whoami()).count, 100);
    });

    it('20 requests overlapping a login lose nothing acknowledged: every cart item answered 200 is in the logged-in session', async (t) => {
      if (!backend.serverSide) return t.skip("a CookieStore keeps each response's copy in the browser");
      const tab = new Tab(backend);
      const token = await tab.loginToken();
      const { csrf } = await tab.whoami();
      const cookie = tab.jar.header;
      const items = Array.from({ length: 20 }, (_, i) => `item-${i}`);
      const adds = items.map((item, i) =>
        fetch(`${backend.urls[i % backend.urls.length]}/cart`, {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
          body: JSON.stringify({ item }),
        }),
      );
      const login = tab.fetch('/login', { method: 'POST', form: { username: 'Ada', password: 'secret', _csrf: token } });
      const [loginRes, ...addRes] = await Promise.all([login, ...adds]);
      assert.equal(loginRes.status, 302);
      const acknowledged = items.filter((_, i) => addRes[i]!.status === 200);
      // The others reached the old sid after the login moved it: a retryable 409, nothing claimed saved.
      assert.deepEqual(
        addRes.map((r) => r.status).filter((s) => s !== 200 && s !== 409),
        [],
      );
      const me = await tab.whoami();
      assert.equal(me.authenticated, true);
      assert.deepEqual([...me.cart].sort(), [...acknowledged].sort(), 'exactly the acknowledged items, none lost, none doubled');
    });
  });
}
