import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';

type Trader = Credentials & { account: number };

const limit = (side: string, price: string, quantity: string, market = 'ETH-USDT') => ({ market, side, type: 'limit', price, quantity });

/** The account's fills in a market, newest first, as [fee, fee asset, liquidity]. */
async function fees(venue: Venue, trader: Trader, market: string): Promise<[string, string, string][]> {
  const fills = await venue.signed(trader, 'GET', `/api/v1/trades?market=${market}`);
  assert.equal(fills.status, 200, JSON.stringify(fills.body));
  return fills.body.trades.map((t: { fee: string; fee_asset: string; liquidity: string }) => [t.fee, t.fee_asset, t.liquidity]);
}

/** What the account pays in a market now, by GET /account/fees: [maker, taker, 30-day volume]. */
async function rates(venue: Venue, trader: Trader, market: string): Promise<[string, string, string]> {
  const answer = await venue.signed(trader, 'GET', '/api/v1/account/fees');
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const row = answer.body.markets.find((m: { market: string }) => m.market === market);
  return [row.maker_fee, row.taker_fee, row.volume_30d];
}

/** One trade of 0.1 ETH at 2,000 USDT: `maker` rests a sell, `taker` buys it. */
async function trade(venue: Venue, maker: Trader, taker: Trader): Promise<void> {
  assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders', limit('sell', '2000.00', '0.1000'))).status, 201);
  const bought = await venue.signed(taker, 'POST', '/api/v1/orders', { ...limit('buy', '2000.00', '0.1000'), time_in_force: 'IOC' });
  assert.deepEqual([bought.status, bought.body.status], [201, 'FILLED'], JSON.stringify(bought.body));
}

test('fee levels and volume tiers price real trades: a user of a level pays its rate, a tier lowers the rate once the 30-day volume passes it, GET /fees and /account/fees show what is charged, the operator\'s ledger adds up, and collected fees move out once', async () => {
  const venue = await Venue.start();
  try {
    const maker = await venue.trader('mia@example.com', { ETH: '10' });
    const taker = await venue.trader('tom@example.com', { USDT: '100000' });

    // Market rates (ETH-USDT: maker 0.1 %, taker 0.2 %): the buyer's fee is in ETH, the seller's in USDT.
    await trade(venue, maker, taker);
    assert.deepEqual((await fees(venue, taker, 'ETH-USDT'))[0], ['0.00020000', 'ETH', 'taker']);
    assert.deepEqual((await fees(venue, maker, 'ETH-USDT'))[0], ['0.200000', 'USDT', 'maker']);
    assert.deepEqual(await rates(venue, taker, 'ETH-USDT'), ['0.001', '0.002', '0']);

    // A level priced below the market, and the taker moved to it.
    const level = await venue.admin('/fee-levels', { level: 4, maker: '0.0002', taker: '0.0005' });
    assert.equal(level.status, 200, JSON.stringify(level.body));
    assert.equal((await venue.admin('/users/kyc', { email: 'tom@example.com', kyc: 'OK', level: 4 })).status, 200);
    assert.deepEqual(await rates(venue, taker, 'ETH-USDT'), ['0.0002', '0.0005', '0']);
    assert.deepEqual(await rates(venue, taker, 'BTC-EUR'), ['0.0002', '0.0005', '0'], 'a level applies in every market');
    assert.equal((await venue.signed(taker, 'GET', '/api/v1/account/fees')).body.level, 4);
    await trade(venue, maker, taker);
    assert.deepEqual((await fees(venue, taker, 'ETH-USDT'))[0], ['0.00005000', 'ETH', 'taker'], 'the level rate is charged');
    assert.deepEqual((await fees(venue, maker, 'ETH-USDT'))[0], ['0.200000', 'USDT', 'maker'], 'a level-0 maker still pays the market rate');

    // A volume tier: 30-day volume counts from when the market has tiers.
    const tiered = await venue.admin('/markets/ETH-USDT/fees', { maker: '0.001', taker: '0.002', tiers: [{ min_volume: '300', maker: '0.0001', taker: '0.0008' }] });
    assert.deepEqual([tiered.status, tiered.body.fee_tiers], [200, [{ min_volume: '300', maker_fee: '0.0001', taker_fee: '0.0008' }]], JSON.stringify(tiered.body));
    await trade(venue, maker, taker);
    assert.deepEqual(await rates(venue, maker, 'ETH-USDT'), ['0.001', '0.002', '200'], 'below the tier: the market rate');
    await trade(venue, maker, taker);
    assert.deepEqual(await rates(venue, maker, 'ETH-USDT'), ['0.0001', '0.0008', '400'], 'past the tier: its rates');
    assert.deepEqual(await rates(venue, taker, 'ETH-USDT'), ['0.0001', '0.0005', '400'], 'the lowest of market, tier and level, each side on its own: the tier as maker, the level as taker');
    await trade(venue, maker, taker);
    assert.deepEqual((await fees(venue, maker, 'ETH-USDT'))[0], ['0.020000', 'USDT', 'maker'], 'the tier rate is charged');
    assert.deepEqual((await fees(venue, taker, 'ETH-USDT'))[0], ['0.00005000', 'ETH', 'taker'], 'the level, lower than the tier, is charged');

    // New base rates keep the tiers; the public schedule shows all of it.
    assert.deepEqual((await venue.admin('/markets/ETH-USDT/fees', { maker: '0.0009', taker: '0.0018' })).body.fee_tiers, tiered.body.fee_tiers);
    const schedule = await call(venue.url, 'GET', '/api/v1/fees');
    assert.deepEqual(schedule.body.markets.find((m: { market: string }) => m.market === 'ETH-USDT'),
      { market: 'ETH-USDT', maker_fee: '0.0009', taker_fee: '0.0018', fee_tiers: [{ min_volume: '300', maker_fee: '0.0001', taker_fee: '0.0008' }] });
    assert.deepEqual(schedule.body.levels.find((l: { level: number }) => l.level === 4), { level: 4, maker_fee: '0.0002', taker_fee: '0.0005' });
    const markets = await call(venue.url, 'GET', '/api/v1/markets');
    assert.deepEqual(markets.body.markets.find((m: { market: string }) => m.market === 'ETH-USDT').fee_tiers, tiered.body.fee_tiers);

    // Bad schedules are refused whole and change nothing.
    for (const [path, body, code] of [
      ['/markets/ETH-USDT/fees', { maker: '0.001', taker: '0.002', tiers: [{ min_volume: '500', maker: '0', taker: '0' }, { min_volume: '400', maker: '0', taker: '0' }] }, 'INVALID_COMMAND'],
      ['/markets/ETH-USDT/fees', { maker: '0.001', taker: '0.002', tiers: [{ min_volume: '0.0000001', maker: '0', taker: '0' }] }, 'INVALID_NUMBER'],
      ['/markets/ETH-USDT/fees', { maker: '1.5', taker: '0.002' }, 'INVALID_COMMAND'],
      ['/fee-levels', { level: 5, maker: '0.001', taker: '-1' }, 'INVALID_REQUEST'],
      ['/fee-levels', { level: 1_001, maker: '0.001', taker: '0.001' }, 'INVALID_REQUEST'],
    ] as const) {
      const refused = await venue.admin(path, body);
      assert.deepEqual([refused.status, refused.body.error?.code], [400, code], `${path} ${JSON.stringify(body)} → ${JSON.stringify(refused.body)}`);
    }
    assert.deepEqual((await call(venue.url, 'GET', '/api/v1/fees')).body, schedule.body, 'nothing changed');

    // The operator's books: what users hold and the fees collected add up to what came in.
    const ledger = await call(venue.url, 'GET', '/admin/v1/ledger', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
    const row = (asset: string) => ledger.body.assets.find((a: { asset: string }) => a.asset === asset);
    assert.deepEqual(row('ETH'), {
      asset: 'ETH', users_available: '9.99960000', users_reserved: '0.00000000', users_locked: '0.00000000', users_total: '9.99960000',
      fees: '0.00040000', net_inflow: '10.00000000', balanced: true,
    }, 'five taker fees in ETH: one at the market rate, four at the level');
    assert.deepEqual([row('USDT').users_total, row('USDT').fees, row('USDT').net_inflow, row('USDT').balanced], ['99999.180000', '0.820000', '100000.000000', true],
      'four maker fees at the market rate and one at the tier');
    assert.ok(ledger.body.assets.every((a: { balanced: boolean }) => a.balanced));

    // Fees are the exchange's revenue: the operator moves them to an account of its own.
    await venue.trader('treasury@example.com', {});
    const collected = await venue.admin('/fees/collect', { email: 'treasury@example.com', asset: 'USDT', amount: '0.5', key: 'december' });
    assert.deepEqual([collected.status, collected.body.fees_left], [201, '0.320000'], JSON.stringify(collected.body));
    const again = await venue.admin('/fees/collect', { email: 'treasury@example.com', asset: 'USDT', amount: '0.5', key: 'december' });
    assert.equal(again.body.error.code, 'DUPLICATE_KEY', 'a retried collection applies once');
    const tooMuch = await venue.admin('/fees/collect', { email: 'treasury@example.com', asset: 'USDT', amount: '0.33' });
    assert.deepEqual([tooMuch.status, tooMuch.body.error.code], [400, 'INSUFFICIENT_BALANCE']);
    const after = await call(venue.url, 'GET', '/admin/v1/ledger', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
    const usdt = after.body.assets.find((a: { asset: string }) => a.asset === 'USDT');
    assert.deepEqual([usdt.users_total, usdt.fees, usdt.balanced], ['99999.680000', '0.320000', true]);
  } finally {
    await venue.stop();
  }
});

test('an operator restricts an account and cancels orders: the barred direction is refused and shown, cancels end orders with reason OPERATOR, a market can be cleared, and all of it survives a restart', async () => {
  let venue = await Venue.start();
  const dataDir = venue.dataDir;
  try {
    const rita = await venue.trader('rita@example.com', { USDT: '100000', BTC: '1' });
    const sam = await venue.trader('sam@example.com', { USDT: '100000', BTC: '1' });
    const place = async (who: Trader, body: Record<string, unknown>) => venue.signed(who, 'POST', '/api/v1/orders', body);
    const ritaSell = await place(rita, limit('sell', '90000.00', '0.1000', 'BTC-USDT'));
    assert.equal(ritaSell.status, 201);

    // Buy only: sells are refused; what is open stays open.
    const restricted = await venue.admin('/accounts/restriction', { email: 'rita@example.com', restriction: 'buy_only' });
    assert.deepEqual(restricted.body, { email: 'rita@example.com', account: rita.account, restriction: 'buy_only', cancelled: 0 });
    const refused = await place(rita, limit('sell', '91000.00', '0.1000', 'BTC-USDT'));
    assert.deepEqual([refused.status, refused.body.error.code], [400, 'DIRECTION_RESTRICTED']);
    assert.equal((await place(rita, limit('buy', '20000.00', '0.1000', 'BTC-USDT'))).status, 201);
    assert.equal((await place(rita, limit('buy', '1000.00', '0.1000'))).status, 201);
    assert.equal((await venue.signed(rita, 'GET', '/api/v1/account')).body.restriction, 'buy_only');
    assert.equal((await venue.signed(sam, 'GET', '/api/v1/account')).body.restriction, 'none', 'other accounts are untouched');
    assert.equal((await venue.signed(rita, 'GET', `/api/v1/orders/${ritaSell.body.id}`)).body.status, 'NEW');

    // The operator cancels one market's orders of the account, then freezes it and cancels the rest.
    const cancelled = await venue.admin('/accounts/cancel-orders', { email: 'rita@example.com', market: 'BTC-USDT' });
    assert.deepEqual(cancelled.body, { email: 'rita@example.com', account: rita.account, market: 'BTC-USDT', cancelled: 2 });
    const sell = await venue.signed(rita, 'GET', `/api/v1/orders/${ritaSell.body.id}`);
    assert.deepEqual([sell.body.status, sell.body.reason], ['CANCELLED', 'OPERATOR']);
    const frozen = await venue.admin('/accounts/restriction', { email: 'rita@example.com', restriction: 'no_trading', cancel_orders: true });
    assert.deepEqual(frozen.body, { email: 'rita@example.com', account: rita.account, restriction: 'no_trading', cancelled: 1 });
    assert.equal((await place(rita, limit('buy', '1000.00', '0.1000'))).body.error.code, 'DIRECTION_RESTRICTED');

    // What the operator sees of the user.
    const shown = await call(venue.url, 'GET', '/admin/v1/users?email=rita%40example.com', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.deepEqual(shown.body.accounts, [{
      account: rita.account, label: 'main', main: true, restriction: 'no_trading', open_orders: 0,
      balances: [{ asset: 'BTC', available: '1.00000000', reserved: '0.00000000', locked: '0.00000000' }, { asset: 'USDT', available: '100000.000000', reserved: '0.000000', locked: '0.000000' }],
    }]);

    // Clearing a market cancels every account's orders there, and only there.
    const samBtc = await place(sam, limit('buy', '20000.00', '0.1000', 'BTC-USDT'));
    const samEth = await place(sam, limit('buy', '1000.00', '0.1000'));
    const cleared = await venue.admin('/markets/BTC-USDT/cancel-orders', {});
    assert.deepEqual(cleared.body, { market: 'BTC-USDT', cancelled: 1 });
    assert.deepEqual((await venue.signed(sam, 'GET', `/api/v1/orders/${samBtc.body.id}`)).body.reason, 'OPERATOR');
    assert.equal((await venue.signed(sam, 'GET', `/api/v1/orders/${samEth.body.id}`)).body.status, 'NEW');
    assert.deepEqual((await venue.signed(sam, 'GET', '/api/v1/markets/BTC-USDT/depth')).body.bids, []);

    // Mistakes are refused and change nothing.
    for (const [path, body, status, code] of [
      ['/accounts/restriction', { email: 'rita@example.com', restriction: 'frozen' }, 400, 'INVALID_REQUEST'],
      ['/accounts/restriction', { email: 'nobody@example.com', restriction: 'none' }, 404, 'UNKNOWN_USER'],
      ['/accounts/restriction', { email: 'rita@example.com', account: sam.account, restriction: 'none' }, 404, 'UNKNOWN_ACCOUNT'],
      ['/accounts/cancel-orders', { email: 'sam@example.com', market: 'DOGE-USDT' }, 404, 'UNKNOWN_MARKET'],
      ['/markets/DOGE-USDT/cancel-orders', {}, 404, 'UNKNOWN_MARKET'],
    ] as const) {
      const answer = await venue.admin(path, body);
      assert.deepEqual([answer.status, answer.body.error?.code], [status, code], `${path} ${JSON.stringify(body)} → ${JSON.stringify(answer.body)}`);
    }
    assert.equal((await venue.signed(sam, 'GET', '/api/v1/account')).body.restriction, 'none', "naming another user's account did not restrict it");

    // A restart keeps the restriction; lifting it lets the account trade again.
    await venue.stop(true);
    venue = await Venue.start({ dataDir });
    assert.equal((await venue.signed(rita, 'GET', '/api/v1/account')).body.restriction, 'no_trading');
    assert.equal((await venue.signed(rita, 'POST', '/api/v1/orders', limit('buy', '1000.00', '0.1000'))).body.error.code, 'DIRECTION_RESTRICTED');
    assert.equal((await venue.admin('/accounts/restriction', { email: 'rita@example.com', restriction: 'none' })).status, 200);
    assert.equal((await venue.signed(rita, 'POST', '/api/v1/orders', limit('buy', '1000.00', '0.1000'))).status, 201);
  } finally {
    await venue.stop();
  }
});

test('every admin request the token admits is kept in an audit trail (when, who, from where, about what, how it ended; never a password); refused ones are not, nor parsed; it pages and survives a restart', async () => {
  let venue = await Venue.start();
  const dataDir = venue.dataDir;
  const as = (operator: string | undefined, method: string, path: string, body?: unknown, token = venue.exchange.adminToken) =>
    call(venue.url, method, `/admin/v1${path}`, { body, headers: { authorization: `Bearer ${token}`, ...(operator === undefined ? {} : { 'x-bourse-operator': operator }) } });
  try {
    const password = 'a password kept out of the trail';
    assert.equal((await as('olivia', 'POST', '/users', { email: 'audited@example.com', password })).status, 201);
    assert.equal((await as('olivia', 'POST', '/deposits', { email: 'audited@example.com', asset: 'USDT', amount: '50' })).status, 201);
    assert.equal((await as('oscar', 'POST', '/accounts/restriction', { email: 'audited@example.com', restriction: 'sell_only' })).status, 200);
    assert.equal((await as(undefined, 'POST', '/users/password', { email: 'nobody@example.com', password })).status, 404);
    assert.equal((await as('oscar', 'GET', '/users?email=audited%40example.com')).status, 200);
    const intruder = await as('mallory', 'POST', '/users', { email: 'x', unknown: 1 }, 'not the token');
    assert.deepEqual([intruder.status, intruder.body.error.code], [401, 'INVALID_ADMIN_TOKEN'], 'the token is checked before the body: a stranger learns nothing of the schema');

    const expected = [
      ['oscar', 'GET', '/admin/v1/users', 200, { email: 'audited@example.com' }],
      ['unnamed', 'POST', '/admin/v1/users/password', 404, { email: 'nobody@example.com' }],
      ['oscar', 'POST', '/admin/v1/accounts/restriction', 200, { email: 'audited@example.com', restriction: 'sell_only' }],
      ['olivia', 'POST', '/admin/v1/deposits', 201, { email: 'audited@example.com', asset: 'USDT', amount: '50' }],
      ['olivia', 'POST', '/admin/v1/users', 201, { email: 'audited@example.com' }],
    ];
    const trail = async (query = '') => (await as('auditor', 'GET', `/audit${query}`)).body;
    const all = await trail();
    assert.deepEqual(all.actions.map((a: Record<string, unknown>) => [a.operator, a.method, a.path, a.status, a.subject]), expected);
    assert.ok(all.actions.every((a: { address: string; ts: number }) => a.address === '127.0.0.1' && a.ts > 0));
    assert.ok(!JSON.stringify(all).includes(password), 'no password in the trail');
    assert.equal(all.next_before, null);

    const first = await trail('?limit=2');
    assert.equal(first.actions.length, 2);
    const rest = await trail(`?limit=2&before=${first.next_before}`);
    assert.deepEqual([...first.actions, ...rest.actions].map((a: { id: number }) => a.id), all.actions.slice(0, 4).map((a: { id: number }) => a.id));

    await venue.stop(true);
    venue = await Venue.start({ dataDir });
    assert.deepEqual((await trail()).actions.map((a: { id: number }) => a.id), all.actions.map((a: { id: number }) => a.id), 'kept across a restart');
  } finally {
    await venue.stop();
  }
});

test('the operator lists users newest first, by KYC status (the review queue) or disabled ones, a page at a time', async () => {
  const venue = await Venue.start();
  const get = async (query: string) => call(venue.url, 'GET', `/admin/v1/users${query}`, { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
  try {
    const emails = ['u1@example.com', 'u2@example.com', 'u3@example.com', 'u4@example.com', 'u5@example.com'];
    for (const email of emails) assert.equal((await venue.admin('/users', { email, password: 'correct horse battery' })).status, 201);
    for (const email of ['u2@example.com', 'u4@example.com']) await venue.admin('/users/kyc', { email, kyc: 'PENDING', level: 0 });
    await venue.admin('/users/disable', { email: 'u3@example.com' });

    const emailsOf = (answer: { body: { users: { email: string }[] } }) => answer.body.users.map((u) => u.email);
    assert.deepEqual(emailsOf(await get('')), [...emails].reverse());
    assert.deepEqual(emailsOf(await get('?kyc=PENDING')), ['u4@example.com', 'u2@example.com'], 'the KYC review queue');
    const disabled = await get('?disabled=true');
    assert.deepEqual([emailsOf(disabled), typeof disabled.body.users[0].disabled_at], [['u3@example.com'], 'number']);
    assert.deepEqual(emailsOf(await get('?disabled=false&kyc=NOT_VERIFIED')), ['u5@example.com', 'u1@example.com']);
    const first = await get('?limit=2');
    const second = await get(`?limit=2&before=${first.body.next_before}`);
    assert.deepEqual([...emailsOf(first), ...emailsOf(second)], ['u5@example.com', 'u4@example.com', 'u3@example.com', 'u2@example.com']);
    assert.equal((await get('?kyc=MAYBE')).status, 400);
    assert.equal((await get('?email=u2%40example.com')).body.kyc, 'PENDING', 'with an email: that one user in full');
  } finally {
    await venue.stop();
  }
});

test('an operator debits a credit made in error: only available funds, from the account named, once per key, with a reason the audit trail keeps; the books stay balanced and the user sees it in the ledger', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('debited@example.com', { USDT: '10000' });
    const sub = await venue.signed(trader, 'POST', '/api/v1/accounts', { label: 'bot' });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    assert.equal((await venue.signed(trader, 'POST', '/api/v1/orders', limit('buy', '2000.00', '4.0000'))).status, 201, '8,000 USDT reserved');
    const debit = (body: Record<string, unknown>) => venue.admin('/debits', { email: 'debited@example.com', asset: 'USDT', reason: 'deposit of 10,000 meant 1,000', ...body });

    const done = await debit({ amount: '1500', key: 'ticket-81' });
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual([done.body.account, done.body.available, done.body.key], [trader.account, '500.000000', 'admin-debit:ticket-81']);
    const again = await debit({ amount: '1500', key: 'ticket-81' });
    assert.deepEqual([again.status, again.body.error.code], [409, 'DUPLICATE_KEY'], 'a retry with the same key is not applied twice');
    const tooMuch = await debit({ amount: '500.000001' });
    assert.deepEqual([tooMuch.status, tooMuch.body.error.code], [400, 'INSUFFICIENT_BALANCE']);
    assert.match(tooMuch.body.error.message, /has 500\.000000 USDT available/);
    for (const [body, status, code] of [
      [{ amount: '1', account: sub.body.account }, 400, 'INSUFFICIENT_BALANCE'],
      [{ amount: '1', account: 999_999 }, 404, 'UNKNOWN_ACCOUNT'],
      [{ amount: '1', asset: 'DOGE' }, 404, 'UNKNOWN_ASSET'],
      [{ amount: '0' }, 400, 'INVALID_NUMBER'],
      [{ amount: '0.0000001' }, 400, 'INVALID_NUMBER'],
      [{ amount: '1', reason: undefined }, 400, 'INVALID_REQUEST'],
      [{ amount: '1', email: 'nobody@example.com' }, 404, 'UNKNOWN_USER'],
    ] as const) {
      const refused = await debit(body);
      assert.deepEqual([refused.status, refused.body.error?.code], [status, code], JSON.stringify([body, refused.body]));
    }
    const balances = (await venue.signed(trader, 'GET', '/api/v1/balances')).body.balances;
    assert.deepEqual(balances.find((b: { asset: string }) => b.asset === 'USDT'), { asset: 'USDT', available: '500.000000', reserved: '8000.000000', locked: '0.000000', total: '8500.000000', pending: '0.000000' },
      'the order keeps its reserve; refusals changed nothing');
    const entry = (await venue.signed(trader, 'GET', '/api/v1/ledger?asset=USDT&limit=1')).body.entries[0];
    assert.deepEqual([entry.kind, entry.available_change], ['debit', '-1500.000000'], 'the user sees the debit in their ledger');
    const books = (await venue.admin('/ledger', undefined, 'GET')).body.assets.find((a: { asset: string }) => a.asset === 'USDT');
    assert.equal(books.balanced, true);
    const audit = (await venue.admin('/audit', undefined, 'GET')).body.actions.find((a: { path: string; status: number }) => a.path === '/admin/v1/debits' && a.status === 201);
    assert.deepEqual([audit.subject.reason, audit.subject.amount, audit.subject.email], ['deposit of 10,000 meant 1,000', '1500', 'debited@example.com']);
  } finally {
    await venue.stop();
  }
});

test('support reads an account as its owner does: open orders, order history, fills and ledger of the main account or a sub-account, paged and by time, and nothing of an account that is not the user\'s', async () => {
  const venue = await Venue.start();
  try {
    const maker = await venue.trader('support-maker@example.com', { USDT: '10000' });
    const taker = await venue.trader('support-taker@example.com', { ETH: '10' });
    await trade(venue, taker, maker);
    assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders', limit('buy', '1500.00', '0.2000'))).status, 201);
    const adminGet = (path: string) => venue.admin(path, undefined, 'GET');
    const email = 'support-maker%40example.com';

    const open = await adminGet(`/accounts/orders?email=${email}`);
    assert.equal(open.status, 200, JSON.stringify(open.body));
    assert.deepEqual([open.body.account, open.body.orders.length, open.body.orders[0].price], [maker.account, 1, '1500.000000']);
    const mine = (await venue.signed(maker, 'GET', '/api/v1/orders?status=all')).body.orders;
    assert.deepEqual((await adminGet(`/accounts/orders?email=${email}&status=all`)).body.orders, mine, 'the history as the user reads it');
    const fills = (await adminGet(`/accounts/trades?email=${email}&market=ETH-USDT`)).body;
    assert.deepEqual(fills.trades, (await venue.signed(maker, 'GET', '/api/v1/trades')).body.trades);
    assert.equal(fills.trades.length, 1);
    const ledger = (await adminGet(`/accounts/ledger?email=${email}&asset=USDT&after=0&limit=1`)).body;
    assert.deepEqual([ledger.entries.length, ledger.entries[0].kind, ledger.entries[0].available_change, typeof ledger.next_after], [1, 'deposit', '10000.000000', 'string'], 'oldest first: the deposit');
    const time = fills.trades[0].time;
    assert.equal((await adminGet(`/accounts/trades?email=${email}&from=${time + 1}`)).body.trades.length, 0);

    const sub = (await venue.signed(maker, 'POST', '/api/v1/accounts', { label: 'bot' })).body.account;
    assert.deepEqual((await adminGet(`/accounts/orders?email=${email}&account=${sub}`)).body, { account: sub, orders: [], next_before: null, next_after: null });
    for (const [path, status, code] of [
      [`/accounts/orders?email=${email}&account=${taker.account}`, 404, 'UNKNOWN_ACCOUNT'],
      ['/accounts/ledger?email=nobody%40example.com', 404, 'UNKNOWN_USER'],
      [`/accounts/orders?email=${email}&from=0`, 400, 'INVALID_REQUEST'],
      [`/accounts/trades?email=${email}&market=NOPE-USDT`, 404, 'UNKNOWN_MARKET'],
      ['/accounts/trades', 400, 'INVALID_REQUEST'],
    ] as const) {
      const refused = await adminGet(path);
      assert.deepEqual([refused.status, refused.body.error.code], [status, code], path);
    }
  } finally {
    await venue.stop();
  }
});

test('a market order stops at the market\'s collar around the last price: it fills up to it and the rest expires PRICE_COLLAR; GET /markets shows the collar and the operator changes it', async () => {
  const venue = await Venue.start();
  try {
    const maker = await venue.trader('collar-maker@example.com', { ETH: '10' });
    const taker = await venue.trader('collar-taker@example.com', { USDT: '100000' });
    await trade(venue, maker, taker);
    const eth = async () => ((await call(venue.url, 'GET', '/api/v1/markets')).body.markets as { market: string; collar: string | null }[]).find((m) => m.market === 'ETH-USDT')!;
    assert.equal((await eth()).collar, '0.05', 'the demo market collars market orders at 5 %');
    for (const price of ['2050.00', '2200.00']) assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders', limit('sell', price, '0.1000'))).status, 201);
    const swept = await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'ETH-USDT', side: 'buy', type: 'market', quantity: '0.3000' });
    assert.equal(swept.status, 201, JSON.stringify(swept.body));
    assert.deepEqual([swept.body.status, swept.body.reason, swept.body.filled_quantity, swept.body.average_price], ['EXPIRED', 'PRICE_COLLAR', '0.10000000', '2050.000000'],
      'last 2,000: up to 2,100, so 2,050 fills and 2,200 stays');
    const refused = await venue.admin('/markets/ETH-USDT/limits', { collar: '1.5' });
    assert.deepEqual([refused.status, refused.body.error.code], [400, 'INVALID_COMMAND']);
    assert.equal((await venue.admin('/markets/ETH-USDT/limits', { collar: '0' })).body.collar, null);
    const rest = await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'ETH-USDT', side: 'buy', type: 'market', quantity: '0.1000' });
    assert.deepEqual([rest.body.status, rest.body.average_price], ['FILLED', '2200.000000'], 'without a collar it sweeps');
  } finally {
    await venue.stop();
  }
});
