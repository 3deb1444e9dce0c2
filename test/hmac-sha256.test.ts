import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { HmacSha256 } from '../src/identity/hmac-sha256.js';

test('HmacSha256 gives what createHmac gives for any key (empty, a block, longer than a block) and any UTF-8 message, call after call', () => {
  fc.assert(fc.property(
    // size 'max': without it fast-check draws at most 10 key bytes and 20 characters, never a key
    // longer than a block or a message longer than the starting buffer.
    fc.uint8Array({ minLength: 0, maxLength: 200, size: 'max' }),
    fc.array(fc.string({ unit: 'binary', maxLength: 3_000, size: 'max' }), { minLength: 1, maxLength: 4 }),
    (keyBytes, messages) => {
      const key = Buffer.from(keyBytes);
      const hmac = new HmacSha256(key);
      // Several messages through one instance: its scratch buffer grows and is reused.
      for (const message of messages) assert.deepEqual(hmac.digest(message), createHmac('sha256', key).update(message).digest());
    },
  ), { numRuns: 500 });
});

test('HmacSha256 handles messages longer than its starting buffer, growing it and then reusing it for shorter ones', () => {
  const key = Buffer.from('k'.repeat(64));
  const hmac = new HmacSha256(key);
  // 'é' is two bytes in UTF-8: 600 of them cross the 1,024-byte starting buffer though only 600 characters long.
  for (const message of ['short', 'é'.repeat(600), 'x'.repeat(70_000), 'after the growth', 'y'.repeat(1_030)]) {
    assert.deepEqual(hmac.digest(message), createHmac('sha256', key).update(message).digest(), `${message.length} characters`);
  }
});

test('HmacSha256 matches RFC 4231 test case 2', () => {
  const digest = new HmacSha256(Buffer.from('Jefe')).digest('what do ya want for nothing?');
  assert.equal(digest.toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

test('HmacSha256.matches accepts the right signature in either case and refuses a changed digit, a non-hex character or a wrong length', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 1, maxLength: 100, size: 'max' }),
    fc.string({ unit: 'binary', maxLength: 500, size: 'max' }),
    fc.nat(63),
    (keyBytes, message, at) => {
      const key = Buffer.from(keyBytes);
      const hmac = new HmacSha256(key);
      const right = createHmac('sha256', key).update(message).digest('hex');
      // Each refusal comes right after an acceptance, so that it cannot pass on what the previous
      // call left in the instance's buffers.
      for (const wrong of [
        right.slice(0, at) + (right[at] === '0' ? '1' : '0') + right.slice(at + 1),
        right.slice(0, at) + 'g' + right.slice(at + 1),
        right.slice(0, at) + ' ' + right.slice(at + 1),
        right.slice(0, 62),
        `${right}00`,
      ]) {
        assert.equal(hmac.matches(message, right), true);
        assert.equal(hmac.matches(message, wrong), false, wrong);
      }
      assert.equal(hmac.matches(message, right.toUpperCase()), true);
      assert.equal(hmac.matches(`${message}x`, right), false);
    },
  ), { numRuns: 300 });
});
