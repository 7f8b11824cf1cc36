import { SerializationError } from '../errors.js';

/** Turns session data into the string a store keeps, and back. */
export interface Serializer {
  /** Must throw (any error) for data it cannot represent; the scope then saves nothing. */
  stringify(data: Record<string, unknown>): string;
  /** Must return a plain object; throwing or returning anything else makes the record count as absent (`session:invalid`). */
  parse(raw: string): unknown;
}

/**
 * JSON, hardened: BigInt and circular data fail loudly instead of being saved
 * half-way, and `__proto__` keys in a stored record are dropped on parse.
 * (`JSON.parse` itself creates `__proto__` as an own data property, which is
 * harmless until user code copies it with `Object.assign` or a deep merge; we
 * drop it so the session object can be merged safely.)
 */
export const jsonSerializer: Serializer = {
  stringify: (data) => JSON.stringify(data),
  // The reviver is slow, so only records that could spell `__proto__` (plainly or with \u escapes) pay for it.
  parse: (raw) => (raw.includes('__proto__') || raw.includes('\\u') ? JSON.parse(raw, dropProtoKeys) : JSON.parse(raw)),
};

function dropProtoKeys(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value;
}

/** Serialize with `serializer`, wrapping any failure in a {@link SerializationError}. */
export function serialize(serializer: Serializer, data: Record<string, unknown>): string {
  let out: unknown;
  try {
    out = serializer.stringify(data);
  } catch (cause) {
    throw new SerializationError(
      `koa-locked-session: the session data cannot be serialized (${(cause as Error)?.message ?? cause}); ` +
        'keep it to JSON values (no BigInt, no circular references) or pass a `serializer` that handles them. Nothing was saved.',
      { cause },
    );
  }
  if (typeof out !== 'string') {
    throw new SerializationError('koa-locked-session: `serializer.stringify` must return a string. Nothing was saved.');
  }
  return out;
}

/** Parse a stored record; `undefined` when it is not a plain object (corrupt, foreign or hand-written data). */
export function deserialize(serializer: Serializer, raw: string): Record<string, unknown> | undefined {
  let data: unknown;
  try {
    data = serializer.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const proto = Object.getPrototypeOf(data);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return proto === null ? { ...(data as Record<string, unknown>) } : (data as Record<string, unknown>);
}
