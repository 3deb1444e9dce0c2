import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, DEFAULT_AUTH_OPTIONS } from '../src/identity/auth.js';
import type { IdentityStore } from '../src/identity/store.js';
import { addressSubject } from '../src/identity/ip.js';
import { RateLimiter } from '../src/identity/rate-limit.js';
import { DEFAULT_RATE_BANS, RateBans, type RateBan } from '../src/identity/rate-bans.js';

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

const BANS = { ...DEFAULT_RATE_BANS, ignoredRefusalsBeforeBan: 5, graceMs: 500, banMs: 120_000, banMaxMs: 600_000, banMemoryMs: 86_400_000, subjectsMax: 100 };

test('a client that waits out every Retry-After is never banned, however often it is refused', () => {
  const bans = new RateBans(BANS);
  // Refused, told to wait 1 s, it waits exactly that long, a thousand times over; requests
  // already on their way (within the grace) are refused too without counting.
  for (let t = 0; t < 1_000_000; t += 1_000) {
    assert.equal(bans.refused('ip:1.2.3.4', 30, t), undefined);
    for (let late = 1; late <= 400; late += 100) assert.equal(bans.refused('ip:1.2.3.4', 30, t + late), undefined);
  }
  assert.ok(bans.none);
  assert.equal(bans.made, 0);
});

test('a client that keeps sending while it should wait is banned, for twice as long at each ban it has had, up to the longest', () => {
  const bans = new RateBans(BANS);
  const flood = (from: number): RateBan | undefined => {
    bans.refused('ip:1.2.3.4', 10, from);
    for (let i = 0; i < 10; i++) {
      const ban = bans.refused('ip:1.2.3.4', 10, from + 600 + i);
      if (ban !== undefined) return ban;
    }
    return undefined;
  };
  const first = flood(0);
  assert.deepEqual(first, { subject: 'ip:1.2.3.4', until: 604 + 120_000, bans: 1 }, 'the fifth ignored refusal bans');
  assert.equal(bans.remaining('ip:1.2.3.4', 1_000), 604 + 120_000 - 1_000);
  assert.equal(bans.remaining('ip:5.6.7.8', 1_000), 0, 'other subjects are not banned');
  assert.deepEqual(bans.all(1_000).map((b) => b.subject), ['ip:1.2.3.4']);
  assert.equal(bans.remaining('ip:1.2.3.4', first!.until), 0, 'the ban ends');
  assert.ok(bans.none, 'and once looked at, no request pays more than a comparison');
  const second = flood(200_000);
  assert.equal(second!.until - 200_604, 240_000);
  assert.equal(second!.bans, 2);
  const third = flood(500_000);
  assert.equal(third!.until - 500_604, 480_000);
  const fourth = flood(1_000_000);
  assert.equal(fourth!.until - 1_000_604, 600_000, 'capped at banMaxMs');
  // A day after the last ban ended, the next is a first again.
  const later = fourth!.until + 86_400_001;
  assert.equal(flood(later)!.until - (later + 604), 120_000);
});

test('ignored refusals count within a minute; a lifted ban is forgotten; banning can be turned off', () => {
  const bans = new RateBans(BANS);
  // Four ignored refusals a minute apart never add up to five.
  for (let minute = 0; minute < 10; minute++) {
    const t = minute * 61_000;
    bans.refused('key:k', 10, t);
    for (let i = 0; i < 4; i++) assert.equal(bans.refused('key:k', 10, t + 600 + i), undefined);
  }
  bans.refused('key:k', 10, 700_000);
  for (let i = 0; i < 4; i++) bans.refused('key:k', 10, 700_600 + i);
  const ban = bans.refused('key:k', 10, 700_700);
  assert.equal(ban?.bans, 1);
  assert.equal(bans.lift('key:k', 700_800), true);
  assert.equal(bans.lift('key:k', 700_800), false, 'nothing left to lift');
  assert.equal(bans.remaining('key:k', 700_800), 0);
  assert.ok(bans.none);
  const off = new RateBans({ ...BANS, ignoredRefusalsBeforeBan: 0 });
  for (let i = 0; i < 10_000; i++) assert.equal(off.refused('ip:1.2.3.4', 10, 600 + i), undefined);
});

test('ban tracking is bounded: subjects with nothing in force go first, and bans in force are kept', () => {
  const bans = new RateBans({ ...BANS, subjectsMax: 1_000 });
  bans.refused('ip:9.9.9.9', 10, 0);
  for (let i = 0; i < 5; i++) bans.refused('ip:9.9.9.9', 10, 600 + i);
  assert.equal(bans.all(700).length, 1);
  for (let i = 0; i < 50_000; i++) bans.refused(`ip:10.0.${i >> 8}.${i & 255}`, 10, 5_000 + i);
  assert.ok(bans.remaining('ip:9.9.9.9', 60_000) > 0, 'the ban survived the flood of new subjects');
  assert.equal(bans.all(60_000).length, 1);
});
