/**
 * A real client: examples/auth and examples/basic driven in headless Chromium.
 *
 * Chromium comes from Debian's packages (`apt-get install -y chromium`, /usr/bin/chromium) and
 * is driven by playwright-core; no browser is ever downloaded. A TLS-terminating proxy
 * (node:https, a self-signed certificate made with openssl at test time) sits in front of the
 * example to show the cookie's Secure attribute with `app.proxy`.
 *
 * Outside CI a missing Chromium (or openssl, for the TLS part) skips loudly; under `CI` it fails.
 *
 * Run: node --import tsx --test test/e2e/browser.test.ts
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Cookie, type Page, type Route } from 'playwright-core';
import { startExample } from '../helpers/examples.js';
import { redisServer } from '../helpers/servers.js';

// examples/auth on Redis (RedisStore + RedisLocker) when a server is available: with real
// store latency between read and write, a broken lock would lose increments here.
const redis = await redisServer();
const AUTH_ENV: Record<string, string> = redis ? { REDIS_URL: redis.url } : {};
after(() => redis?.stop());

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const INCREMENTS_PER_TAB = 50;
const TOTAL_INCREMENTS = 2 * INCREMENTS_PER_TAB;
const THIRTY_DAYS_S = 30 * 24 * 3600;
/** Each step is bounded, so a browser that stalls fails the step instead of hanging the run. */
const STEP = { timeout: 30_000 };

type Example = Awaited<ReturnType<typeof startExample>>;

/** Under CI a missing tool fails the run; elsewhere it skips, loudly. Returns the skip reason. */
function missingTool(what: string, install: string): string {
  const reason = `${what} not found; install it with \`${install}\` to run the browser end-to-end tests`;
  if (process.env.CI) throw new Error(`browser e2e tests cannot run under CI: ${reason}`);
  process.stderr.write(`\n${'*'.repeat(78)}\n*** SKIPPING browser e2e tests: ${reason}\n${'*'.repeat(78)}\n\n`);
  return `SKIPPED: ${reason}`;
}

const chromiumSkip: string | false = existsSync(CHROMIUM) ? false : missingTool(CHROMIUM, 'apt-get install -y chromium');
const opensslSkip: string | false =
  spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
    ? false
    : missingTool('openssl (for the TLS proxy)', 'apt-get install -y openssl');

/** The browser's cookies of the auth example's session: `sid` and its signature `sid.sig`. */
async function sidCookies(context: BrowserContext): Promise<Cookie[]> {
  return (await context.cookies()).filter((c) => c.name === 'sid' || c.name === 'sid.sig');
}

/** Log in through the real form; resolves on /account, which counts the user's live sessions. */
async function logIn(
  page: Page,
  base: string,
  { name = 'Ada', remember, devices = 1 }: { name?: string; remember: boolean; devices?: number },
): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Password').fill('secret');
  if (remember) await page.getByLabel('Remember me').check();
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match((await page.locator('h1 + p').textContent()) ?? '', new RegExp(`Logged in as ${name} on ${devices} device\\(s\\)`));
}

/** Status of a JSON-client request made by the page itself (same cookies, same origin). */
function jsonStatus(page: Page, path: string, method = 'GET'): Promise<number> {
  return page.evaluate(
    async ([p, m]) => (await fetch(p!, { method: m!, headers: { accept: 'application/json' }, redirect: 'manual' })).status,
    [path, method],
  );
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const endToEnd = (headers: IncomingHttpHeaders): IncomingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));

/**
 * A tiny TLS-terminating reverse proxy: HTTPS on a loopback port, forwarding over plain
 * HTTP to `target` with `X-Forwarded-Proto: https` (what nginx or a load balancer adds).
 */
async function tlsProxy(target: string, tls: { key: Buffer; cert: Buffer }): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server: HttpsServer = createHttpsServer(tls, (req, res) => {
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1' },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, endToEnd(up.headers));
        up.pipe(res);
      },
    );
    forward.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy error: ${error.message}`);
    });
    req.pipe(forward);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  return {
    url: `https://localhost:${port}`,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}

describe('browser end-to-end (headless Chromium)', { skip: chromiumSkip, timeout: 120_000 }, () => {
  let browser: Browser;
  /** examples/auth as the README runs it (no TRUST_PROXY), shared by the HTTP tests and the proxy control. */
  let auth: Example;

  before(async () => {
    [browser, auth] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
      startExample('auth', AUTH_ENV),
    ]);
  });
  after(async () => {
    await browser?.close();
    await auth?.stop();
  });

  it('examples/basic: the counter increments across reloads', STEP, async () => {
    const ex = await startExample('basic');
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const first = await page.goto(ex.url);
      const one = (await first!.json()) as { count: number; id: string };
      assert.equal(one.count, 1);
      const two = (await (await page.reload())!.json()) as { count: number; id: string };
      const three = (await (await page.reload())!.json()) as { count: number; id: string };
      assert.deepEqual([two.count, three.count], [2, 3]);
      assert.equal(two.id, one.id, 'the same session across reloads');
      assert.equal(three.id, one.id);
      const [sid] = (await context.cookies()).filter((c) => c.name === 'sid');
      assert.ok(sid, 'the browser stored the sid cookie');
      assert.equal(sid.httpOnly, true);
    } finally {
      await context.close();
      await ex.stop();
    }
  });

  describe('examples/auth over plain HTTP', () => {
    let context: BrowserContext;
    let tabA: Page;
    let tabB: Page;

    before(async () => {
      context = await browser.newContext();
      tabA = await context.newPage();
      tabB = await context.newPage();
    });
    after(async () => {
      await context?.close();
    });

    it(
      'logs in through the form and opens the protected page; the cookie is HttpOnly, SameSite=Lax, a browser-session cookie, not Secure over HTTP',
      STEP,
      async () => {
        const anonymous = await tabA.goto(`${auth.url}/account`);
        assert.equal(new URL(tabA.url()).pathname, '/login', 'logged out: /account redirects to the login form');
        assert.equal(anonymous!.status(), 200);

        await logIn(tabA, auth.url, { remember: false });
        await tabB.goto(`${auth.url}/account`);
        assert.equal(new URL(tabB.url()).pathname, '/account', 'the second tab shares the login');
        assert.equal(await tabB.locator('#count').textContent(), '0');

        const cookies = await sidCookies(context);
        assert.deepEqual(cookies.map((c) => c.name).sort(), ['sid', 'sid.sig']);
        for (const c of cookies) {
          assert.equal(c.httpOnly, true, `${c.name}: HttpOnly`);
          assert.equal(c.sameSite, 'Lax', `${c.name}: SameSite=Lax`);
          assert.equal(c.secure, false, `${c.name}: no Secure over plain HTTP`);
          assert.equal(c.expires, -1, `${c.name}: login without "remember me" gives a browser-session cookie`);
          assert.equal(c.path, '/');
        }
        assert.equal(
          await tabA.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie),
          '',
          'HttpOnly: page scripts cannot read the sid',
        );
      },
    );

    it(
      `${TOTAL_INCREMENTS} concurrent fetch('/increment') from two tabs end at exactly ${TOTAL_INCREMENTS}, each value 1..${TOTAL_INCREMENTS} once`,
      STEP,
      async () => {
        // A barrier in the browser's network layer: no request reaches the server until all
        // 100 have been issued by the two tabs, so every fetch is in flight at once.
        const held: Route[] = [];
        let releaseAll!: () => void;
        const allIssued = new Promise<void>((resolve) => (releaseAll = resolve));
        await context.route('**/increment', async (route) => {
          held.push(route);
          if (held.length === TOTAL_INCREMENTS) releaseAll();
        });
        try {
          const fire = (tab: Page) =>
            tab.evaluate(async (n) => {
              const responses = await Promise.all(
                Array.from({ length: n }, () => fetch('/increment', { method: 'POST', headers: { accept: 'application/json' } })),
              );
              return Promise.all(responses.map(async (r) => ({ status: r.status, count: ((await r.json()) as { count: number }).count })));
            }, INCREMENTS_PER_TAB);
          const batches = Promise.all([fire(tabA), fire(tabB)]);
          // (a fetch that fails before the barrier opens surfaces here instead of hanging)
          await Promise.race([allIssued, batches.then(() => assert.fail('the fetches settled before all were issued'))]);
          assert.equal(held.length, TOTAL_INCREMENTS, 'all requests were issued before any was answered');
          await Promise.all(held.map((route) => route.continue()));
          const [fromA, fromB] = await batches;
          assert.equal(fromA.length, INCREMENTS_PER_TAB);
          assert.equal(fromB.length, INCREMENTS_PER_TAB);
          const all = [...fromA, ...fromB];
          assert.deepEqual(new Set(all.map((r) => r.status)), new Set([200]));
          assert.deepEqual(
            all.map((r) => r.count).sort((a, b) => a - b),
            Array.from({ length: TOTAL_INCREMENTS }, (_, i) => i + 1),
            'no increment lost, none doubled',
          );
        } finally {
          await context.unroute('**/increment');
        }

        await tabB.reload();
        assert.equal(await tabB.locator('#count').textContent(), String(TOTAL_INCREMENTS), 'the stored counter is exactly 100');
        for (const c of await sidCookies(context)) {
          assert.equal(c.expires, -1, `${c.name}: saves under the lock keep the browser-session cookie`);
        }
      },
    );

    it('logging out in one tab logs the other tab out, even if it replays the old cookie', STEP, async () => {
      await tabA.goto(`${auth.url}/account`);
      await tabB.goto(`${auth.url}/account`);
      const oldCookies = await sidCookies(context);
      assert.equal(oldCookies.length, 2);

      await tabA.getByRole('button', { name: 'Log out', exact: true }).click();
      await tabA.waitForURL(`${auth.url}/`);
      assert.equal(await tabA.getByRole('link', { name: 'Log in' }).count(), 1, 'tab A shows the logged-out home page');
      assert.deepEqual(await sidCookies(context), [], 'logout cleared the cookie');

      await tabB.reload();
      assert.equal(new URL(tabB.url()).pathname, '/login', 'tab B: reload redirects to the login form');
      assert.equal(await jsonStatus(tabB, '/account'), 401, 'tab B: a JSON client gets 401');
      assert.equal(await jsonStatus(tabB, '/increment', 'POST'), 401);

      // Not just a cleared cookie: the server ended the session, so the old sid is dead.
      await context.addCookies(oldCookies);
      assert.equal((await sidCookies(context)).length, 2, 'the old cookie is back in the jar');
      await tabB.goto(`${auth.url}/account`);
      assert.equal(new URL(tabB.url()).pathname, '/login', 'the old cookie no longer logs anyone in');
      assert.equal(await jsonStatus(tabB, '/account'), 401);
    });
  });

  describe('examples/auth behind a TLS-terminating proxy', { skip: opensslSkip }, () => {
    let tmp: string;
    let tls: { key: Buffer; cert: Buffer };
    const stops: Array<() => Promise<void>> = [];

    before(() => {
      tmp = mkdtempSync(join(tmpdir(), 'kls-e2e-tls-'));
      const key = join(tmp, 'key.pem');
      const cert = join(tmp, 'cert.pem');
      const made = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost',
          '-days',
          '1',
          '-keyout',
          key,
          '-out',
          cert,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(made.status, 0, `openssl could not make a certificate:\n${made.stderr}`);
      tls = { key: readFileSync(key), cert: readFileSync(cert) };
    });
    after(async () => {
      for (const stop of stops.reverse()) await stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    /** A fresh TLS proxy in front of `target`; returns the proxy's https URL. */
    async function behindProxy(target: string): Promise<string> {
      const proxy = await tlsProxy(target, tls);
      stops.push(() => proxy.close());
      return proxy.url;
    }

    /** A fresh browser context that accepts the self-signed certificate. */
    async function freshContext(): Promise<BrowserContext> {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      stops.push(() => context.close());
      return context;
    }

    it(
      'with app.proxy (TRUST_PROXY=1): Secure, HttpOnly, SameSite=Lax; remember me → Max-Age, otherwise a browser-session cookie',
      STEP,
      async () => {
        const trusting = await startExample('auth', { ...AUTH_ENV, TRUST_PROXY: '1' });
        stops.push(() => trusting.stop());
        const base = await behindProxy(trusting.url);

        const remembered = await freshContext();
        const rememberedPage = await remembered.newPage();
        await logIn(rememberedPage, base, { remember: true });
        assert.equal(new URL(rememberedPage.url()).protocol, 'https:');
        const persistent = await sidCookies(remembered);
        assert.deepEqual(persistent.map((c) => c.name).sort(), ['sid', 'sid.sig']);
        const now = Date.now() / 1000;
        for (const c of persistent) {
          assert.equal(c.secure, true, `${c.name}: Secure behind the TLS proxy`);
          assert.equal(c.httpOnly, true, `${c.name}: HttpOnly`);
          assert.equal(c.sameSite, 'Lax', `${c.name}: SameSite=Lax`);
          assert.ok(c.expires > 0, `${c.name}: remember me gives a persistent cookie (got expires ${c.expires})`);
          // Max-Age is the example's 30-day ttl (a wide window: this is not a timing check).
          assert.ok(
            c.expires > now + THIRTY_DAYS_S - 3600 && c.expires <= now + THIRTY_DAYS_S + 60,
            `${c.name}: expires in 30 days (got ${c.expires - now} s)`,
          );
        }

        const forgotten = await freshContext();
        const forgottenPage = await forgotten.newPage();
        await logIn(forgottenPage, base, { remember: false, devices: 2 }); // a second browser: a second device
        const session = await sidCookies(forgotten);
        assert.deepEqual(session.map((c) => c.name).sort(), ['sid', 'sid.sig']);
        for (const c of session) {
          assert.equal(c.secure, true, `${c.name}: Secure behind the TLS proxy`);
          assert.equal(c.httpOnly, true, `${c.name}: HttpOnly`);
          assert.equal(c.sameSite, 'Lax', `${c.name}: SameSite=Lax`);
          assert.equal(c.expires, -1, `${c.name}: without remember me, a browser-session cookie`);
        }
      },
    );

    it('without app.proxy the same proxy gives no Secure (X-Forwarded-Proto is not trusted)', STEP, async () => {
      const base = await behindProxy(auth.url); // the example as the README runs it: no TRUST_PROXY
      const context = await freshContext();
      const page = await context.newPage();
      await logIn(page, base, { name: 'Grace', remember: true });
      const cookies = await sidCookies(context);
      assert.deepEqual(cookies.map((c) => c.name).sort(), ['sid', 'sid.sig']);
      for (const c of cookies) assert.equal(c.secure, false, `${c.name}: not Secure when the app does not trust the proxy`);
    });
  });
});
