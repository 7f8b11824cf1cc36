/**
 * The Koa auth stack in a real browser (issue 21 item 3): examples/passport.ts (koa-passport +
 * passport-local + koa-csrf + @koa/router + @koa/bodyparser on plainSession(), MemoryStore)
 * driven in headless Chromium: the login form is POSTed by the browser, passport redirects,
 * the protected page opens, and logout ends the session.
 *
 * Chromium comes from Debian's packages (/usr/bin/chromium), driven by playwright-core; no
 * browser is ever downloaded. Outside CI a missing Chromium skips loudly; under `CI` it fails.
 *
 * Run: node --import tsx --test test/e2e/passport-browser.test.ts
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Cookie } from 'playwright-core';
import { createApp } from '../../examples/passport.js';
import { MemoryStore } from '../../src/index.js';
import { listen } from '../helpers/app.js';

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
/** Each step is bounded, so a browser that stalls fails the step instead of hanging the run. */
const STEP = { timeout: 30_000 };

function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const reason = `${CHROMIUM} not found; install it with \`apt-get install -y chromium\` to run the browser end-to-end tests`;
  if (process.env.CI) throw new Error(`browser e2e tests cannot run under CI: ${reason}`);
  process.stderr.write(`\n*** SKIPPING passport browser e2e tests: ${reason}\n\n`);
  return `SKIPPED: ${reason}`;
}

async function sidCookies(context: BrowserContext): Promise<Cookie[]> {
  return (await context.cookies()).filter((c) => c.name === 'sid' || c.name === 'sid.sig');
}

describe('examples/passport in headless Chromium (MemoryStore)', { skip: chromiumMissing(), timeout: 120_000 }, () => {
  let browser: Browser;
  let server: Awaited<ReturnType<typeof listen>>;
  let base: string;

  before(async () => {
    const app = createApp({ master: new MemoryStore() });
    app.silent = true;
    [browser, server] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
      listen(app),
    ]);
    base = server.url;
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it(
    'form POST logs in, passport redirects to the protected page, a new sid replaces the anonymous one; a second tab shares the login; logout ends it',
    STEP,
    async () => {
      const context = await browser.newContext();
      try {
        const tab = await context.newPage();
        await tab.goto(`${base}/account`);
        assert.equal(new URL(tab.url()).pathname, '/login', 'logged out: requireLogin redirects /account to the form');
        const anonymous = await sidCookies(context);
        assert.ok(
          anonymous.some((c) => c.name === 'sid'),
          'the form page set an anonymous session (it holds the CSRF secret)',
        );

        // A wrong password: passport's failureRedirect brings the form back, nobody logged in.
        await tab.getByLabel('Name').fill('Ada');
        await tab.getByLabel('Password').fill('wrong');
        await tab.getByRole('button', { name: 'Log in' }).click();
        await tab.waitForURL(`${base}/login`);

        await tab.getByLabel('Name').fill('Ada');
        await tab.getByLabel('Password').fill('secret');
        const [posted] = await Promise.all([
          tab.waitForResponse((r) => r.url() === `${base}/login` && r.request().method() === 'POST'),
          tab.getByRole('button', { name: 'Log in' }).click(),
        ]);
        assert.equal(posted.status(), 302, 'passport answers the form POST with a redirect');
        assert.equal(posted.headers().location, '/account');
        await tab.waitForURL(`${base}/account`);
        assert.equal(await tab.locator('#name').textContent(), 'Ada');
        assert.match(
          (await tab.locator('h1 + p').textContent()) ?? '',
          /isAuthenticated: true/,
          'requireLogin and ctx.isAuthenticated() agree',
        );

        const loggedIn = await sidCookies(context);
        const sid = (cookies: Cookie[]) => cookies.find((c) => c.name === 'sid')?.value;
        assert.notEqual(sid(loggedIn), sid(anonymous), 'login moved the session to a new sid (fixation defence)');
        for (const c of loggedIn) assert.equal(c.httpOnly, true, `${c.name}: HttpOnly`);

        // The planted (pre-login) sid does not log anyone in.
        const planted = await browser.newContext();
        try {
          await planted.addCookies(anonymous);
          const p = await planted.newPage();
          // Right after the move the old sid answers a retryable 409 (the moved-session tombstone), later the form.
          const res = await p.goto(`${base}/account`);
          assert.ok(
            res!.status() === 409 || new URL(p.url()).pathname === '/login',
            `the anonymous sid is not logged in (got ${res!.status()} at ${p.url()})`,
          );
          assert.equal(await p.locator('#name').count(), 0, 'the account page is not shown to the planted sid');
        } finally {
          await planted.close();
        }

        const other = await context.newPage();
        await other.goto(`${base}/account`);
        assert.equal(await other.locator('#name').textContent(), 'Ada', 'a second tab of the same browser is logged in');

        await tab.getByRole('button', { name: 'Log out' }).click();
        await tab.waitForURL(`${base}/login`);
        await other.goto(`${base}/account`);
        assert.equal(new URL(other.url()).pathname, '/login', 'after logout the other tab is logged out too');

        // Replaying the logged-in cookie: the server ended that session.
        const replay = await browser.newContext();
        try {
          await replay.addCookies(loggedIn);
          const r = await replay.newPage();
          await r.goto(`${base}/account`);
          assert.equal(new URL(r.url()).pathname, '/login', 'the logged-in sid is dead after logout');
        } finally {
          await replay.close();
        }
      } finally {
        await context.close();
      }
    },
  );
});
