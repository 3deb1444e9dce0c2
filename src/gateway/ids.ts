/**
 * An id as a client sends it in a body or a socket message: a number, or its digits as a string
 * (at most 16). Anything else is undefined: Number() of an object would run the client's own
 * toString or valueOf.
 */
export function idFrom(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^[0-9]{1,16}$/.test(value) ? Number(value) : undefined;
}
