import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cookiesOf, startExample } from './helpers/examples.js';

describe('examples run as documented', () => {
  it('basic (npm start): a counter that survives across requests', async () => {
    const ex = await startExample('basic');
    try {
      const first = await fetch(ex.url);
      assert.equal(((await first.json()) as { count: number }).count, 1);
      const second = await fetch(ex.url, { headers: { cookie: cookiesOf(first) } });
      assert.equal(((await second.json()) as { count: number }).count, 2);
    } finally {
      await ex.stop();
    }
  });

  it('cookie: the session lives in a sealed cookie', async () => {
    const ex = await startExample('cookie');
    try {
      const first = await fetch(ex.url);
      assert.equal(first.status, 200);
      const cookie = cookiesOf(first);
      assert.match(cookie, /=v1\.e\./, 'a sealed v1 cookie');
      const second = await fetch(ex.url, { headers: { cookie } });
      assert.equal(second.status, 200);
      assert.notDeepEqual(await second.text(), '');
    } finally {
      await ex.stop();
    }
  });

  it('auth: login form, protected page, counter, logout', async () => {
    const ex = await startExample('auth');
    try {
      const anonymous = await fetch(`${ex.url}/account`, { redirect: 'manual', headers: { accept: 'application/json' } });
      assert.equal(anonymous.status, 401);
      const login = await fetch(`${ex.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'name=Ada&password=secret&remember=1',
      });
      assert.equal(login.status, 302);
      const cookie = cookiesOf(login);
      const account = await fetch(`${ex.url}/account`, { headers: { cookie } });
      assert.match(await account.text(), /Logged in as Ada on 1 device/);
      const counts = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${ex.url}/increment`, { method: 'POST', headers: { cookie } }).then((r) => r.json() as Promise<{ count: number }>),
        ),
      );
      assert.deepEqual(
        counts.map((c) => c.count).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const logout = await fetch(`${ex.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie } });
      assert.equal(logout.status, 302);
      const after = await fetch(`${ex.url}/account`, { redirect: 'manual', headers: { cookie, accept: 'application/json' } });
      assert.equal(after.status, 401, 'the old cookie no longer works');
    } finally {
      await ex.stop();
    }
  });
});

describe('examples/diagnostics', () => {
  it('prints lock, store and mirror-error metrics', async () => {
    const ex = await startExample('diagnostics');
    try {
      const first = await fetch(ex.url);
      await fetch(ex.url, { headers: { cookie: cookiesOf(first) } });
      await ex.waitFor(/\[store\] memory \(master\) set/);
      await ex.waitFor(/\[lock\] {2}session memory acquired/);
      await ex.waitFor(/\[mirror-error\] flaky-mirror set: .*mirror down/);
    } finally {
      await ex.stop();
    }
  });
});

describe('examples/passport', () => {
  it('passport-local login through koa-csrf, protected page, logout', async () => {
    const ex = await startExample('passport');
    try {
      const form = await fetch(`${ex.url}/login`);
      const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
      const login = await fetch(`${ex.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookiesOf(form) },
        body: new URLSearchParams({ username: 'Ada', password: 'secret', _csrf: token }).toString(),
      });
      assert.equal(login.status, 302);
      const cookie = cookiesOf(login);
      const account = await fetch(`${ex.url}/account`, { headers: { cookie } });
      assert.match(await account.text(), /Logged in as <span id="name">Ada<\/span> \(isAuthenticated: true\)/);
      assert.equal((await fetch(`${ex.url}/health`)).status, 200);
    } finally {
      await ex.stop();
    }
  });
});
