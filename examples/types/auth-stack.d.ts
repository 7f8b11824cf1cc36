// Minimal types for the two auth packages of examples/passport.ts that ship none
// (koa-passport 6, koa-csrf 5), covering what the examples and tests use.
declare module 'koa-csrf' {
  import type { Middleware } from 'koa';
  interface CsrfOptions {
    errorHandler?: (ctx: import('koa').Context) => unknown;
    excludedMethods?: string[];
    disableQuery?: boolean;
    ignoredPathGlobs?: string[];
  }
  class CSRF {
    constructor(options?: CsrfOptions);
  }
  interface CSRF extends Middleware {}
  export default CSRF;
}

declare module 'koa-passport' {
  import type { Middleware } from 'koa';
  import type { PassportStatic } from 'passport';
  interface KoaPassport extends Omit<PassportStatic, 'initialize' | 'session' | 'authenticate'> {
    initialize(): Middleware;
    session(): Middleware;
    authenticate(strategy: string | string[], options?: Record<string, unknown>, callback?: (...args: unknown[]) => unknown): Middleware;
    KoaPassport: new () => KoaPassport;
  }
  const passport: KoaPassport;
  export default passport;
}
