import { StoreError } from './errors.js';
import type { Store } from './stores/store.js';

/** What a failed mirror write reports (turned into `session:mirror-error` by the middleware). */
export interface MirrorError {
  store: string;
  sid: string;
  op: 'set' | 'destroy' | 'touch';
  error: unknown;
}

/** How mirror writes relate to the request: awaited before the scope ends, or left to finish in the background. */
export type MirrorWrites = 'await' | 'background';

/**
 * Master + mirrors as one Store: reads from the master only; writes go to the
 * master first (its failure fails the call and no mirror is written), then to
 * every mirror in parallel. A mirror failure is reported, never thrown.
 */
export class Replica implements Store {
  readonly name: string;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    readonly master: Store,
    readonly mirrors: readonly Store[],
    readonly onMirrorError: (report: MirrorError) => void,
    readonly mode: MirrorWrites = 'await',
  ) {
    this.name = master.name;
  }

  /** The same mirrors in front of another view of the master (e.g. a lease-guarded one). */
  withMaster(master: Store): Replica {
    return master === this.master ? this : new Replica(master, this.mirrors, this.onMirrorError, this.mode);
  }

  get(key: string): Promise<string | undefined> {
    return guard(this.master, 'GET', () => this.master.get(key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await guard(this.master, 'SET', () => this.master.set(key, value, ttlMs));
    await this.#fanOut(key, 'set', (m) => m.set(key, value, ttlMs));
  }

  async destroy(key: string): Promise<void> {
    await guard(this.master, 'DESTROY', () => this.master.destroy(key));
    await this.#fanOut(key, 'destroy', (m) => m.destroy(key));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const { master } = this;
    if (master.touch) await guard(master, 'TOUCH', () => master.touch!(key, ttlMs));
    await this.#fanOut(key, 'touch', (m) => m.touch?.(key, ttlMs));
  }

  /** Wait until every background mirror write has settled. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all([this.master, ...this.mirrors].map((s) => s.close?.()));
  }

  #fanOut(key: string, op: MirrorError['op'], call: (mirror: Store) => Promise<void> | undefined): Promise<void> | void {
    if (this.mirrors.length === 0) return;
    const all = Promise.all(
      this.mirrors.map(async (mirror) => {
        try {
          await call(mirror);
        } catch (error) {
          this.onMirrorError({ store: mirror.name, sid: key, op, error });
        }
      }),
    ).then(() => undefined);
    if (this.mode === 'await') return all;
    this.#pending.add(all);
    void all.finally(() => this.#pending.delete(all));
  }
}

/** Run a master call, turning any failure into a StoreError that names the store. */
async function guard<T>(store: Store, op: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StoreError || (error as { status?: unknown })?.status !== undefined) throw error;
    throw new StoreError(store.name, `${op} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}
