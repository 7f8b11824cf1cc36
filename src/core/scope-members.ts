import { SerializationError } from '../errors.js';
import type { RecordFormat } from './record.js';

/**
 * One caller inside a scope: the data as it was when it joined (null: empty;
 * undefined: not serializable), and, for a caller that joined an open scope,
 * the top-level keys it set, deleted or reached into (recorded by its view).
 * The opener works on the data itself (no view on the hot path): its keys are
 * what changed since it opened, less those a joined caller touched.
 */
export interface Participant<Scope> {
  readonly scope: Scope;
  readonly checkpoint: string | null | undefined;
  /** How many mid-scope saves had been handed in when it joined (see `Members.#handedIn`). */
  readonly joinedAt: number;
  readonly touched?: Set<string>;
  /** What the caller's function gets: a recording view for a joined caller, the data itself for the opener. */
  readonly view: Record<string, unknown>;
}

/**
 * The data as a joined caller sees it: the same object (its changes are the
 * scope's), recording the top-level keys it sets, deletes or reaches into (an
 * object value read may be changed in place), so a throw can undo just those.
 */
function recordingView(data: Record<string, unknown>, touched: Set<string>): Record<string, unknown> {
  return new Proxy(data, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof key === 'string' && typeof value === 'object' && value !== null) touched.add(key);
      return value;
    },
    set(target, key, value) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.set(target, key, value);
    },
    deleteProperty(target, key) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.deleteProperty(target, key);
    },
    defineProperty(target, key, descriptor) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.defineProperty(target, key, descriptor);
    },
  });
}

/**
 * The callers taking part in one scope and how each one's changes are undone
 * when it throws while others remain (the rollback of one participant): the
 * scope's data is shared, so each joined caller records what it touched.
 */
export class Members<Scope> {
  /** Everyone who took part in the scope, the opener first. */
  readonly #all: Participant<Scope>[] = [];
  /**
   * Participants that left with success while others remained (their change is
   * saved at once, and their caller told so): the keys each changed and the data
   * as it left. A later rollback puts such a key back to that value, not to what
   * it was before (an acknowledged change is never undone).
   */
  readonly #handedIn: Array<{
    readonly by: Participant<Scope>;
    readonly keys: ReadonlySet<string>;
    readonly checkpoint: string | null | undefined;
  }> = [];

  constructor(private readonly format: RecordFormat) {}

  /** Only the opener took part, all along. */
  get alone(): boolean {
    return this.#all.length === 1;
  }

  /** The opener: it works on `data` itself, from the record the scope opened on. */
  open(scope: Scope, original: string | undefined, data: Record<string, unknown>): Participant<Scope> {
    const opener: Participant<Scope> = { scope, checkpoint: original ?? null, joinedAt: 0, view: data };
    this.#all.push(opener);
    return opener;
  }

  /** A caller joins the open scope: its way back if it throws is the data as it stands now, and what it touches from now on. */
  join(scope: Scope, data: Record<string, unknown>): Participant<Scope> {
    const touched = new Set<string>();
    const joined: Participant<Scope> = {
      scope,
      checkpoint: this.format.checkpoint(data),
      joinedAt: this.#handedIn.length,
      touched,
      view: recordingView(data, touched),
    };
    this.#all.push(joined);
    return joined;
  }

  /**
   * The top-level keys `me` changed: what its view recorded (a joined caller),
   * or for the opener what differs from the record it opened on, less the keys
   * a joined caller touched. A key two callers of one request touched at once
   * counts as the joined caller's.
   */
  #keysOf(me: Participant<Scope>, before: Record<string, unknown>, data: Record<string, unknown>): string[] {
    if (me.touched) return [...me.touched];
    const others = new Set(this.#all.flatMap((p) => (p === me || !p.touched ? [] : [...p.touched])));
    const keys = new Set([...Object.keys(before), ...Object.keys(data)]);
    return [...keys].filter((key) => !others.has(key) && !this.format.sameValue(before[key], data[key]));
  }

  /** `me` leaves with success while others remain: note what it changed, as it left (see {@link #handedIn}). */
  handIn(me: Participant<Scope>, data: Record<string, unknown>): void {
    const before = this.format.restore(me.checkpoint);
    if (before) this.#handedIn.push({ by: me, keys: new Set(this.#keysOf(me, before, data)), checkpoint: this.format.checkpoint(data) });
  }

  /**
   * Undo in `data` the top-level keys `me` changed; what the other callers of
   * the request changed stays. A key another caller changed and handed in
   * since `me` joined goes back to the value it was saved with, not further.
   * @returns the error every later save must fail with, when `me`'s data could not be restored.
   */
  rollback(me: Participant<Scope>, data: Record<string, unknown>): SerializationError | undefined {
    const before = this.format.restore(me.checkpoint);
    if (!before) {
      return new SerializationError(
        'koa-locked-session: a scope threw and its changes could not be rolled back (its data could not be serialized when it joined); nothing more is saved',
      );
    }
    const handedIn = this.#handedIn.slice(me.joinedAt).filter((h) => h.by !== me);
    for (const key of this.#keysOf(me, before, data)) {
      const last = [...handedIn].reverse().find((h) => h.keys.has(key));
      const source = (last && this.format.restore(last.checkpoint)) ?? before;
      if (Object.hasOwn(source, key)) data[key] = source[key];
      else delete data[key];
    }
    return undefined;
  }
}
