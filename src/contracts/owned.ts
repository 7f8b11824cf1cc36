/**
 * The clients stores created themselves (`RedisStore.connect()`,
 * `MongoStore.connect()`, a `MemcachedStore` given `servers`), tracked one way
 * for every store: `close()` closes a client the store created and never one
 * you passed in.
 */
const owned = new WeakMap<object, () => Promise<void> | void>();

/** Record that `store` created its client and how to close it. */
export function own(store: object, close: () => Promise<void> | void): void {
  owned.set(store, close);
}

/** Close the client `store` created, once (later calls do nothing); a store without one does nothing. */
export async function closeOwned(store: object): Promise<void> {
  const close = owned.get(store);
  owned.delete(store);
  await close?.();
}
