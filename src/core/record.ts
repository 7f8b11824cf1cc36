import { SerializationError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { deserialize, jsonSerializer, serialize, type Serializer } from './serialize.js';

/** The record key the per-session settings hide under (never visible in the data). */
export const META = '$session';

/** Per-session settings stored with the record (set by `login`, and the absolute clock). */
export interface SessionMeta {
  ttl?: number;
  remember?: false;
  /** Creation time (ms since epoch), kept when `absoluteTtl` is set. */
  created?: number;
}

/** A stored record taken apart: the data callers see and the settings hidden beside it. */
export interface DecodedRecord {
  data: Record<string, unknown>;
  meta: SessionMeta | undefined;
}

/** True when `data` has no own enumerable key (without allocating the array `Object.keys` would). */
function hasNoKeys(data: Record<string, unknown>): boolean {
  for (const key in data) if (Object.hasOwn(data, key)) return false;
  return true;
}

/**
 * The stored record of a session: the data plus the `$session` settings, how
 * it is encoded (one serialization of the data per save) and decoded
 * (untrusted: settings only within the configured limits), and the expiry
 * policy (idle `ttl`, login's own ttl, `absoluteTtl`). One per `session()`.
 */
export class RecordFormat {
  readonly #serializer: Serializer;
  readonly #ttl: number;
  readonly #absoluteTtl: number | undefined;
  /** The default serializer lets the settings be appended to the data's JSON instead of serializing it twice. */
  readonly #json: boolean;
  /** The serializer's output for `{}`: a record equal to it is an empty session. */
  readonly empty: string;

  constructor(options: Pick<ResolvedOptions, 'serializer' | 'ttl' | 'absoluteTtl'>) {
    this.#serializer = options.serializer;
    this.#ttl = options.ttl;
    this.#absoluteTtl = options.absoluteTtl;
    this.#json = options.serializer === jsonSerializer;
    this.empty = serialize(options.serializer, {});
  }

  /** Parse a record into the data and the per-session settings hidden in it; `undefined` when it is not a session record. */
  decode(raw: string): DecodedRecord | undefined {
    const data = deserialize(this.#serializer, raw);
    if (data === undefined) return undefined;
    if (!(META in data)) return { data, meta: undefined };
    const { [META]: meta, ...rest } = data;
    return { data: rest, meta: this.#checkMeta(meta) };
  }

  /**
   * The record to store for `data` with `meta`, or `undefined` when the data is
   * empty (the session is destroyed). Empty is judged on what would be stored:
   * `{ a: undefined }` serializes to `{}` and is empty too. The data is
   * serialized once; with the default serializer the settings are appended to
   * its JSON (the same string `JSON.stringify({ ...data, $session })` gives).
   */
  encode(data: Record<string, unknown>, meta: SessionMeta | undefined): string | undefined {
    if (Object.hasOwn(data, META)) {
      throw new SerializationError(
        `koa-locked-session: \`${META}\` is a reserved session key (it holds per-session settings); use another name. Nothing was saved.`,
      );
    }
    if (hasNoKeys(data)) return undefined;
    const value = serialize(this.#serializer, data);
    if (value === this.empty) return undefined;
    if (meta === undefined) return value;
    if (this.#json && value.endsWith('}')) return `${value.slice(0, -1)},${JSON.stringify(META)}:${JSON.stringify(meta)}}`;
    return serialize(this.#serializer, { ...data, [META]: meta });
  }

  /** The data serialized now, to roll back to (`null`: empty; `undefined`: it cannot be serialized). */
  checkpoint(data: Record<string, unknown>): string | null | undefined {
    try {
      return hasNoKeys(data) ? null : serialize(this.#serializer, data);
    } catch {
      return undefined;
    }
  }

  /** The data of a checkpoint (undefined when it cannot be rebuilt). */
  restore(checkpoint: string | null | undefined): Record<string, unknown> | undefined {
    if (checkpoint === undefined) return undefined;
    if (checkpoint === null) return {};
    return this.decode(checkpoint)?.data;
  }

  /** Two top-level values are the same when they serialize alike. */
  sameValue(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (a === undefined || b === undefined) return false;
    try {
      return serialize(this.#serializer, { v: a }) === serialize(this.#serializer, { v: b });
    } catch {
      return false;
    }
  }

  /** The settings of a save: a new session (or one saved before `absoluteTtl` was set) starts the absolute clock. */
  forSave(meta: SessionMeta | undefined, isNew: boolean): SessionMeta | undefined {
    if (this.#absoluteTtl !== undefined && (isNew || meta?.created === undefined)) return { ...meta, created: Date.now() };
    return meta;
  }

  /** The settings of a login (`undefined` when it needs none). */
  forLogin(ttl: number | undefined, remember: boolean): SessionMeta | undefined {
    const meta: SessionMeta = {};
    if (ttl !== undefined) meta.ttl = Math.min(ttl, this.#ttl);
    if (!remember) meta.remember = false;
    if (this.#absoluteTtl !== undefined) meta.created = Date.now(); // a login starts the absolute clock anew
    return hasNoKeys(meta as Record<string, unknown>) ? undefined : meta;
  }

  /** The session's expiry in ms: login's `ttl` if it set one, else the option; never past the absolute timeout. */
  ttl(meta: SessionMeta | undefined): number {
    const idle = meta?.ttl ?? this.#ttl;
    const created = meta?.created;
    if (this.#absoluteTtl === undefined || created === undefined) return idle;
    return Math.max(1, Math.min(idle, created + this.#absoluteTtl - Date.now()));
  }

  /** True when the session outlived `absoluteTtl` (it is then treated as gone). */
  pastAbsolute(meta: SessionMeta | undefined): boolean {
    return this.#absoluteTtl !== undefined && meta?.created !== undefined && Date.now() >= meta.created + this.#absoluteTtl;
  }

  /** Per-session settings read back from a record are only trusted within the configured limits. */
  #checkMeta(raw: unknown): SessionMeta | undefined {
    if (typeof raw !== 'object' || raw === null) return undefined;
    const { ttl, remember, created } = raw as Record<string, unknown>;
    const meta: SessionMeta = {};
    if (typeof ttl === 'number' && ttl > 0) meta.ttl = Math.min(ttl, this.#ttl);
    if (remember === false) meta.remember = false;
    if (typeof created === 'number' && Number.isFinite(created)) meta.created = Math.min(created, Date.now());
    return hasNoKeys(meta as Record<string, unknown>) ? undefined : meta;
  }
}
