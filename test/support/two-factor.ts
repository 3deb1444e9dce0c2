/** Turning two-factor on as a user does it, for tests that need a two-factor user. */
import assert from 'node:assert/strict';
import { generateSync } from 'otplib';
import { call } from './api-client.js';

/**
 * Sets up and enables TOTP for the session's user (`headers` carries the session); returns the
 * secret and a code generator at the test's clock (milliseconds).
 */
export async function enableTwoFactor(url: string, headers: Record<string, string>, password: string, clock: () => number): Promise<{ secret: string; code: () => string }> {
  const setup = await call(url, 'POST', '/api/v1/auth/2fa/setup', { headers, body: { password } });
  assert.equal(setup.status, 200, JSON.stringify(setup.body));
  const secret = setup.body.secret as string;
  const code = (): string => generateSync({ secret, epoch: Math.floor(clock() / 1000) });
  const enabled = await call(url, 'POST', '/api/v1/auth/2fa/enable', { headers, body: { code: code() } });
  assert.equal(enabled.body.two_factor, true, JSON.stringify(enabled.body));
  return { secret, code };
}
