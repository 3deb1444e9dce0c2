import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, DEFAULT_AUTH_OPTIONS } from '../src/identity/auth.js';
import type { IdentityStore } from '../src/identity/store.js';
import { addressSubject } from '../src/identity/ip.js';
import { RateLimiter } from '../src/identity/rate-limit.js';

test('a budget refills at its rate and refuses with the wait until the weight fits', () => {
  const limiter = new RateLimiter({ capacity: 10, intervalMs: 1_000, subjectsMax: 100 });
  assert.equal(limiter.take('ip:1.2.3.4', 6, 0), 0);
  assert.equal(limiter.take('ip:1.2.3.4', 4, 0), 0);
  assert.equal(limiter.take('ip:1.2.3.4', 5, 0), 500, 'five more units need half a second');
  assert.equal(limiter.take('ip:1.2.3.4', 5, 500), 0);
  assert.equal(limiter.take('ip:5.6.7.8', 10, 500), 0, 'subjects have their own budgets');
});

test('the limiter tracks at most its bound: idle subjects go first, then the oldest tenth, and a busy subject keeps its spent budget', () => {
  const limiter = new RateLimiter({ capacity: 10, intervalMs: 1_000, subjectsMax: 100 });
  limiter.take('busy', 10, 0);
  for (let i = 0; i < 99; i++) limiter.take(`idle-${i}`, 1, 0);
  assert.equal(limiter.size, 100);
  // A second later everything has refilled but `busy`, which spent nearly all of it again.
  assert.equal(limiter.take('busy', 9, 990), 0);
  limiter.take('newcomer', 1, 1_000);
  assert.equal(limiter.size, 2, 'the idle subjects were dropped');
  assert.ok(limiter.take('busy', 10, 1_000) > 0, 'the busy subject was kept, its budget still spent');

  // All busy: one eviction makes room for a tenth of the bound at once (the next scan is 100
  // newcomers away, not one), and a flood of new subjects never grows it past the bound.
  const full = new RateLimiter({ capacity: 10, intervalMs: 1_000, subjectsMax: 1_000 });
  for (let i = 0; i <= 1_000; i++) full.take(`busy-${i}`, 1, 0);
  assert.equal(full.size, 901);
  const flooded = new RateLimiter({ capacity: 10, intervalMs: 1_000, subjectsMax: 1_000 });
  for (let i = 0; i < 50_000; i++) flooded.take(`flood-${i}`, 1, 0);
  assert.ok(flooded.size <= 1_000);
  assert.ok(flooded.size >= 900, 'an eviction drops a tenth, not everything');
});

test('budgets and lockouts are kept per IPv4 address and per IPv6 /64', () => {
  assert.equal(addressSubject('203.0.113.7'), 'ip:203.0.113.7');
  assert.equal(addressSubject('::ffff:203.0.113.7'), 'ip:203.0.113.7');
  const site = addressSubject('2001:db8:1:2::1');
  assert.equal(site, 'ip:2001:db8:1:2::/64');
  for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0000:0000:0000:0042', '2001:db8:1:2::abcd']) {
    assert.equal(addressSubject(same), site, `${same} is in the same /64`);
  }
  assert.notEqual(addressSubject('2001:db8:1:3::1'), site, 'the next /64 is another subject');
  assert.equal(addressSubject('fe80::1%eth0'), 'ip:fe80:0:0:0::/64');
});

test('failure tracking stays bounded under a flood of new subjects, and recent subjects still lock out', () => {
  const auth = new Authenticator({} as IdentityStore, { ...DEFAULT_AUTH_OPTIONS, failuresBeforeLockout: 2 });
  for (let i = 0; i < 120_000; i++) auth.recordFailure(`ip:flood-${i}`, 1_000);
  assert.ok(auth.trackedFailures <= 100_000, `bounded: ${auth.trackedFailures}`);
  assert.ok(auth.trackedFailures >= 90_000);
  auth.recordFailure('ip:flood-119999', 1_001);
  assert.ok(auth.lockedFor(['ip:flood-119999'], 1_001) > 0, 'the newest subjects keep their count');
});
