/** Small formatting helpers for error messages (never include secrets or session data). */

/** The message of an error (or of each error in an array, as some drivers report them). */
export function errorMessage(error: unknown): string {
  if (Array.isArray(error)) return error.map(errorMessage).join('; ');
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** A value as an option error shows it: strings quoted, objects by kind. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
  return String(value);
}

/** A server URL with its credentials masked, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
