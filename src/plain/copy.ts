/**
 * A deep, mutable copy of session data. The handle gives data through proxies
 * (the read-only snapshot of get(), the recording view of a joined scope),
 * which structuredClone refuses, so plain objects and arrays are walked here
 * through their getters; anything else (a Date, a Map from a custom
 * serializer) is structured-cloned, or kept as is when it cannot be.
 */
export function deepCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (key === '__proto__') continue;
      out[key] = deepCopy((value as Record<string, unknown>)[key]);
    }
    return out as T;
  }
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}
