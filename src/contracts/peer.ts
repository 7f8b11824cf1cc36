/**
 * Loading the optional client packages (`redis`, `memcached`, `mongodb`):
 * they are optional peer dependencies, loaded only by the store that creates
 * its own client. When one is not installed, say which command installs it
 * instead of letting a bare `ERR_MODULE_NOT_FOUND` escape.
 */
import { StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';

/**
 * `load()` (an `import()` of `pkg`), or a `StoreError` naming the store and
 * the install command when `pkg` is not installed. Any other failure (a
 * broken install, a missing dependency of the package) keeps its message.
 */
export async function loadPeer<T>(store: string, pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const missing = (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && errorMessage(error).includes(`'${pkg}'`);
    if (missing) {
      throw new StoreError(
        store,
        `the \`${pkg}\` package is not installed: run \`npm install ${pkg}\` (it is an optional peer dependency of koa-locked-session)`,
        { cause: error, status: 500, outcome: 'none' },
      );
    }
    throw new StoreError(store, `could not load the \`${pkg}\` package: ${errorMessage(error)}`, {
      cause: error,
      status: 500,
      outcome: 'none',
    });
  }
}
