/** Polls `probe` until `ok` holds of its value (every 10 ms, for 4 s at most); throws naming `what` otherwise. */
export async function until<T>(probe: () => Promise<T> | T, ok: (value: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (ok(value)) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
