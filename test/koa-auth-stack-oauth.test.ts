/**
 * passport-oauth2 on plainSession() (issue 21 item 3), against a tiny OAuth2 provider on
 * loopback (authorize → redirect back with code + state, token endpoint, profile call).
 *
 * passport-oauth2 with `state: true` (and with `pkce: true`) keeps the OAuth state in the
 * session under `oauth2:<provider host>` between the redirect to the provider and the
 * callback: it must survive the round trip through the view (saved at the end of the first
 * request, read back on the callback), the login must end logged in, and a forged state, a
 * callback without a started flow, or another browser's state must be refused.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Router from '@koa/router';
import Koa from 'koa';
import passportSingleton from 'koa-passport';
import OAuth2Strategy from 'passport-oauth2';
import {
  CookieStore,
  MemoryStore,
  passportUser,
  plainSession,
  session,
  type PlainSessionOptions,
  type SessionOptions,
} from '../src/index.js';
import { listen } from './helpers/app.js';
import { CookieJar } from './helpers/cookies.js';

const CLIENT_ID = 'kls-test-client';
const CLIENT_SECRET = 'kls-test-secret';

/** A minimal OAuth2 authorization-code provider: every authorize is approved for user "ada". */
interface Provider {
  url: string;
  /** Codes issued and not yet redeemed: code → the redirect_uri and PKCE challenge they were issued for. */
  issued: Map<string, { redirectUri: string; challenge: string | undefined }>;
  tokens: Set<string>;
  close(): Promise<void>;
}

async function startProvider(): Promise<Provider> {
  const issued: Provider['issued'] = new Map();
  const tokens = new Set<string>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const redirect = url.searchParams.get('redirect_uri');
      if (url.searchParams.get('client_id') !== CLIENT_ID || !redirect || url.searchParams.get('response_type') !== 'code')
        return json(400, { error: 'invalid_request' });
      const code = randomBytes(12).toString('hex');
      issued.set(code, { redirectUri: redirect, challenge: url.searchParams.get('code_challenge') ?? undefined });
      const back = new URL(redirect);
      back.searchParams.set('code', code);
      const state = url.searchParams.get('state');
      if (state !== null) back.searchParams.set('state', state);
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(raw);
        const code = form.get('code') ?? '';
        const grant = issued.get(code);
        issued.delete(code);
        if (
          form.get('grant_type') !== 'authorization_code' ||
          form.get('client_id') !== CLIENT_ID ||
          form.get('client_secret') !== CLIENT_SECRET
        )
          return json(401, { error: 'invalid_client' });
        if (!grant || grant.redirectUri !== form.get('redirect_uri')) return json(400, { error: 'invalid_grant' });
        // PKCE (S256): the verifier the app kept in its session must hash to the challenge it sent.
        if (
          grant.challenge !== undefined &&
          createHash('sha256')
            .update(form.get('code_verifier') ?? '')
            .digest('base64url') !== grant.challenge
        )
          return json(400, { error: 'invalid_grant', error_description: 'code_verifier mismatch' });
        const token = randomBytes(12).toString('hex');
        tokens.add(token);
        json(200, { access_token: token, token_type: 'Bearer' });
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/userinfo') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('access_token') ?? '';
      if (!tokens.has(token)) return json(401, { error: 'invalid_token' });
      return json(200, { id: 'ada', name: 'Ada Lovelace' });
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    issued,
    tokens,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}

interface User {
  id: string;
  name: string;
}

/** The app: session() + plainSession() + a fresh koa-passport with passport-oauth2 on the provider. */
function createOAuthApp(
  provider: Provider,
  sessionOptions: SessionOptions,
  view: PlainSessionOptions,
  strategy: { pkce: boolean },
  self: { url: string },
): Koa {
  const passport = new passportSingleton.KoaPassport();
  const oauth = new OAuth2Strategy(
    {
      authorizationURL: `${provider.url}/authorize`,
      tokenURL: `${provider.url}/token`,
      clientID: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      get callbackURL() {
        return `${self.url}/auth/callback`;
      },
      state: true,
      pkce: strategy.pkce,
    } as OAuth2Strategy.StrategyOptions,
    (_accessToken: string, _refreshToken: string, profile: User, done: OAuth2Strategy.VerifyCallback) => done(null, profile),
  );
  // The profile call: passport-oauth2's default userProfile returns {}; a real strategy fetches it.
  oauth.userProfile = function (this: OAuth2Strategy, accessToken: string, done: (err?: unknown, profile?: unknown) => void) {
    (
      this as unknown as {
        _oauth2: {
          useAuthorizationHeaderforGET(on: boolean): void;
          get(url: string, token: string, cb: (err: unknown, body?: string | Buffer) => void): void;
        };
      }
    )._oauth2.useAuthorizationHeaderforGET(true);
    (
      this as unknown as { _oauth2: { get(url: string, token: string, cb: (err: unknown, body?: string | Buffer) => void): void } }
    )._oauth2.get(`${provider.url}/userinfo`, accessToken, (err, body) => {
      if (err) return done(err);
      done(null, JSON.parse(String(body)) as User);
    });
  };
  passport.use('provider', oauth);
  passport.serializeUser((user, done) => done(null, (user as User).id));
  passport.deserializeUser((id: string, done) => done(null, { id, name: id === 'ada' ? 'Ada Lovelace' : id }));

  const app = new Koa();
  app.keys = ['oauth test keys, not secret'];
  app.silent = true;
  app.use(session(sessionOptions));
  const router = new Router();
  // The handle API beside the view: what the session holds now (for the state assertions).
  router.get('/raw', async (ctx) => {
    ctx.body = await ctx.session.get();
  });
  router.use(plainSession(view), passport.initialize(), passport.session());
  router.get('/auth/provider', passport.authenticate('provider'));
  router.get('/auth/callback', passport.authenticate('provider', { successRedirect: '/me', failureRedirect: '/failed' }));
  router.get('/me', (ctx) => {
    ctx.body = { authenticated: ctx.isAuthenticated(), user: (ctx.state.user as User | undefined) ?? null };
  });
  router.get('/failed', (ctx) => {
    ctx.body = { authenticated: ctx.isAuthenticated() };
  });
  app.use(router.routes());
  return app;
}

/** A browser: a cookie jar, redirects followed by hand (so each hop is visible). */
class Browser {
  readonly jar = new CookieJar();
  async get(url: string): Promise<Response> {
    const headers = new Headers();
    if (new URL(url).host === new URL(this.app).host && this.jar.header) headers.set('cookie', this.jar.header);
    const res = await fetch(url, { headers, redirect: 'manual' });
    if (new URL(url).host === new URL(this.app).host) this.jar.take(res);
    return res;
  }
  constructor(readonly app: string) {}
  /** GET /auth/provider on the app: answers the provider's authorize URL it redirects to. */
  async start(): Promise<string> {
    const res = await this.get(`${this.app}/auth/provider`);
    assert.equal(res.status, 302, 'the app redirects to the provider');
    const location = res.headers.get('location')!;
    assert.ok(location.includes('/authorize?'), `to the authorize endpoint (got ${location})`);
    return location;
  }
  /** Follow the provider's approval: answers the app's callback URL (with code and state). */
  async authorize(authorizeUrl: string): Promise<URL> {
    const res = await this.get(authorizeUrl);
    assert.equal(res.status, 302, 'the provider redirects back');
    return new URL(res.headers.get('location')!);
  }
  async json(path: string): Promise<Record<string, unknown>> {
    const res = await this.get(`${this.app}${path}`);
    assert.equal(res.status, 200, `${path}: 200`);
    return (await res.json()) as Record<string, unknown>;
  }
}

const cases: Array<[string, () => SessionOptions, PlainSessionOptions, { pkce: boolean }]> = [
  ['MemoryStore, lock: request, state: true', () => ({ master: new MemoryStore() }), { user: passportUser }, { pkce: false }],
  ['MemoryStore, lock: request, pkce', () => ({ master: new MemoryStore() }), { user: passportUser }, { pkce: true }],
  ['MemoryStore, lock: merge, state: true', () => ({ master: new MemoryStore() }), { user: passportUser, lock: 'merge' }, { pkce: false }],
  [
    'CookieStore master, state: true',
    () => ({ master: new CookieStore({ keys: ['a cookie store key of at least 32 chars!'] }) }),
    { user: passportUser },
    { pkce: false },
  ],
];

for (const [label, sessionOptions, view, strategy] of cases) {
  describe(`passport-oauth2 on plainSession(): ${label}`, () => {
    let provider: Provider;
    let server: Awaited<ReturnType<typeof listen>>;
    const self = { url: '' };
    const KEY = 'oauth2:127.0.0.1';

    before(async () => {
      provider = await startProvider();
      server = await listen(createOAuthApp(provider, sessionOptions(), view, strategy, self));
      self.url = server.url;
    });
    after(async () => {
      await server.close();
      await provider.close();
    });

    it(`the state kept under "${KEY}" survives the round trip; the callback logs in on a new sid and consumes it`, async () => {
      const browser = new Browser(self.url);
      const authorizeUrl = await browser.start();
      const sent = new URL(authorizeUrl).searchParams.get('state');
      assert.ok(sent, 'passport-oauth2 sent a state');
      if (strategy.pkce) assert.ok(new URL(authorizeUrl).searchParams.get('code_challenge'), 'and a PKCE challenge');
      const stored = (await browser.json('/raw'))[KEY] as { state?: { handle?: unknown; code_verifier?: unknown } | string } | undefined;
      assert.ok(stored, `the session holds ${KEY} between the redirect and the callback`);
      if (strategy.pkce) {
        // The PKCE store keeps { handle, code_verifier }: the verifier must come back for the token call.
        assert.equal(typeof stored.state === 'object' && stored.state.handle, sent, 'the very state sent to the provider');
        assert.equal(typeof stored.state === 'object' && typeof stored.state.code_verifier, 'string', 'and the PKCE verifier');
      } else assert.equal(stored.state, sent, 'the very state sent to the provider');
      const sidBefore = browser.jar.get('sid');

      const callback = await browser.authorize(authorizeUrl);
      assert.equal(callback.searchParams.get('state'), sent);
      const done = await browser.get(callback.toString());
      assert.equal(done.status, 302);
      assert.equal(done.headers.get('location'), '/me', 'passport accepted the state and logged in');
      const me = await browser.json('/me');
      assert.deepEqual(me, { authenticated: true, user: { id: 'ada', name: 'Ada Lovelace' } });
      if (sessionOptions().master instanceof MemoryStore) assert.notEqual(browser.jar.get('sid'), sidBefore, 'login moved to a new sid');
      const after = await browser.json('/raw');
      assert.equal(after[KEY], undefined, 'the state was used once and is gone');
      assert.deepEqual(after.passport, { user: 'ada' });
      assert.equal(after.user, 'ada', 'passportUser kept the login in the user field (requireLogin, user index)');
      assert.equal(provider.tokens.size > 0, true);
    });

    it('a forged state is refused: no token exchange, not logged in', async () => {
      const browser = new Browser(self.url);
      const callback = await browser.authorize(await browser.start());
      callback.searchParams.set('state', 'forged-state-value');
      const tokensBefore = provider.tokens.size;
      const refused = await browser.get(callback.toString());
      assert.equal(refused.status, 302);
      assert.equal(refused.headers.get('location'), '/failed', 'passport refused the state');
      assert.equal(provider.tokens.size, tokensBefore, 'the code was never exchanged');
      assert.deepEqual(await browser.json('/me'), { authenticated: false, user: null });
    });

    it("a callback with no flow started in this session, or with another browser's state, is refused", async () => {
      const attacker = new Browser(self.url);
      const attackerCallback = await attacker.authorize(await attacker.start());

      // The victim never started a flow: the attacker's callback URL (code + state) must not log the victim in.
      const victim = new Browser(self.url);
      const fixated = await victim.get(attackerCallback.toString());
      assert.equal(fixated.headers.get('location'), '/failed');
      assert.deepEqual(await victim.json('/me'), { authenticated: false, user: null });

      // The victim has a flow of its own: still the attacker's state is not its state.
      await victim.start();
      const crossed = await victim.get(attackerCallback.toString());
      assert.equal(crossed.headers.get('location'), '/failed');
      assert.deepEqual(await victim.json('/me'), { authenticated: false, user: null });
    });
  });
}
