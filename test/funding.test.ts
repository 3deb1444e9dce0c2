import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateSync } from 'otplib';
import { enableTwoFactor } from './support/two-factor.js';
import { findViolations } from '../src/core/index.js';
import { DEFAULT_AUTH_OPTIONS } from '../src/identity/auth.js';
import { DEMO_FUNDING } from '../src/funding/config.js';
import { call } from './support/api-client.js';
import type { ApiResponse, Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { until } from './support/until.js';
import { SocketClient } from './support/ws-client.js';
import { codeIn, outbox } from './support/mail.js';
import type { ReadMail } from './support/mail.js';

const DAY = 86_400_000;
const BTC_DESTINATION = 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq';
const ETH_DESTINATION = '0x52908400098527886E0F7030069857D2E4169EE7';

let venue: Venue;
let now = Date.now();

before(async () => {
  // One address sends 1,000 requests at once below: no budget and no connection cap in the way.
  venue = await Venue.start({ clock: () => now, server: { keyWeightPerSecond: 1_000_000, ipWeightPerSecond: 1_000_000, connectionsPerAddress: 0 } });
});

after(async () => {
  await venue.stop();
});

/** Signed with the venue's clock, one millisecond apart, so that identical requests are not replays. */
function signed(credentials: Credentials, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  now += 1;
  return call(venue.url, method, path, { credentials, body, timestamp: now });
}

async function user(email: string, funds: Record<string, string> = {}): Promise<Credentials & { account: number; id: number }> {
  const trader = await venue.trader(email, funds, ['read', 'trade', 'withdraw'], ['127.0.0.1']);
  const me = await signed(trader, 'GET', '/api/v1/account');
  return { ...trader, id: me.body.user_id };
}

async function balance(credentials: Credentials, asset: string): Promise<{ available: string; reserved: string; locked: string; pending: string } | undefined> {
  const response = await signed(credentials, 'GET', '/api/v1/balances');
  return response.body.balances.find((b: { asset: string }) => b.asset === asset);
}

function assertLedgerSound(): void {
  assert.deepEqual(findViolations(venue.exchange.engine), []);
}

/** Allow-lists an address and lets its hold pass (the venue's clock is ours). */
async function allow(credentials: Credentials, asset: string, address: string, tag?: string): Promise<void> {
  const added = await signed(credentials, 'POST', '/api/v1/withdrawal-addresses', { asset, address, tag, label: 'mine' });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  now += DAY + 1_000;
}

test('deposit addresses derive from the configured extended public keys (BIP84 and Ethereum test vectors) and stay the same per user', async () => {
  const first = await user('addr1@example.com');
  const btc = await signed(first, 'GET', '/api/v1/deposit-address?asset=BTC');
  assert.equal(btc.status, 200);
  // m/84'/0'/0'/0/0 and m/44'/60'/0'/0/0 of the BIP39 test mnemonic "abandon … about".
  assert.equal(btc.body.address, 'bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu');
  const eth = await signed(first, 'GET', '/api/v1/deposit-address?asset=ETH');
  assert.equal(eth.body.address, '0x9858EfFD232B4033E47d90003D41EC34EcaEda94');
  assert.equal((await signed(first, 'GET', '/api/v1/deposit-address?asset=USDT')).body.address, eth.body.address, 'one Ethereum address per user for ETH and tokens');
  assert.equal((await signed(first, 'GET', '/api/v1/deposit-address?asset=BTC')).body.address, btc.body.address, 'stable');
  const second = await user('addr2@example.com');
  const other = await signed(second, 'GET', '/api/v1/deposit-address?asset=BTC');
  assert.match(other.body.address, /^bc1q[02-9ac-hj-np-z]{38}$/);
  assert.notEqual(other.body.address, btc.body.address);
  const xrp = await signed(second, 'GET', '/api/v1/deposit-address?asset=XRP');
  assert.deepEqual({ address: xrp.body.address, tag: xrp.body.tag }, { address: 'rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh', tag: String(second.id) });
  const assets = (await call(venue.url, 'GET', '/api/v1/funding/assets')).body.assets;
  assert.deepEqual(assets.find((a: { asset: string }) => a.asset === 'USDT'), {
    asset: 'USDT', network: 'ethereum', rail: null, tag: null, confirmations: 3, min_withdrawal: '10.000000', withdrawal_fee: '1.000000', withdrawal_fee_rate: '0.001', deposits: 'enabled', withdrawals: 'enabled', notice: null,
  });
  const fiat = await signed(second, 'GET', '/api/v1/deposit-address?asset=EUR');
  assert.equal(fiat.status, 400);
  assert.equal(fiat.body.error.code, 'FIAT_ASSET');
});

test('a chain deposit is pending until its confirmations, then credited once, however often and in whatever order it is reported', async () => {
  const alice = await user('deposit@example.com');
  const { address } = (await signed(alice, 'GET', '/api/v1/deposit-address?asset=BTC')).body;
  const sent = await venue.admin('/chain/send', { asset: 'BTC', address, amount: '0.25' });
  assert.equal(sent.status, 201);
  assert.equal((await balance(alice, 'BTC'))?.pending, '0.25000000', 'seen in the mempool: pending');
  assert.equal((await balance(alice, 'BTC'))?.available, '0.00000000', 'pending is not spendable');
  assert.equal((await signed(alice, 'GET', '/api/v1/deposits?asset=BTC')).body.deposits[0].state, 'detected');
  await venue.admin('/chain/mine', { network: 'bitcoin', blocks: 1 });
  const confirming = (await signed(alice, 'GET', '/api/v1/deposits?asset=BTC')).body.deposits[0];
  assert.deepEqual([confirming.state, confirming.confirmations, confirming.required_confirmations], ['confirming', 1, 2]);
  await venue.admin('/chain/mine', { network: 'bitcoin', blocks: 1 });
  await until(() => balance(alice, 'BTC'), (b) => b?.available === '0.25000000', 'the credit');
  assert.equal((await balance(alice, 'BTC'))?.pending, '0.00000000');

  // The watcher reports the same output again, out of order, many times and all at once.
  const funding = venue.exchange.funding;
  const base = { network: 'bitcoin' as const, txid: sent.body.txid, output: 0, address, tag: null, asset: 'BTC', amount: 25_000_000, dropped: false };
  for (const confirmations of [5, 0, 2, 1, 9, 2, 3]) funding.observe({ ...base, confirmations });
  await Promise.all(Array.from({ length: 50 }, async () => funding.observe({ ...base, confirmations: 6 })));
  // A second output of the same transaction is a separate credit, also applied once.
  for (let i = 0; i < 5; i++) funding.observe({ ...base, output: 1, amount: 1_000, confirmations: 3 - (i % 2) });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await balance(alice, 'BTC'))?.available, '0.25001000');
  const deposits = (await signed(alice, 'GET', '/api/v1/deposits')).body.deposits;
  assert.equal(deposits.length, 2);
  assert.deepEqual(deposits.map((d: { state: string }) => d.state), ['credited', 'credited']);
  assertLedgerSound();
});

test('a reorg drops an unconfirmed deposit (never credited, no longer pending); one that drops a credited deposit is recorded for the operator', async () => {
  const bob = await user('reorg@example.com');
  const { address } = (await signed(bob, 'GET', '/api/v1/deposit-address?asset=ETH')).body;
  await venue.admin('/chain/send', { asset: 'ETH', address, amount: '1.5' });
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 2 });
  assert.equal((await balance(bob, 'ETH'))?.pending, '1.50000000');
  const reorg = await venue.admin('/chain/reorg', { network: 'ethereum', depth: 2 });
  assert.equal(reorg.body.dropped.length >= 1, true);
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 5 });
  const deposit = (await signed(bob, 'GET', '/api/v1/deposits?asset=ETH')).body.deposits[0];
  assert.equal(deposit.state, 'dropped');
  assert.equal((await balance(bob, 'ETH'))?.pending ?? '0.00000000', '0.00000000', 'no longer pending');
  assert.equal((await balance(bob, 'ETH'))?.available ?? '0.00000000', '0.00000000', 'never credited');
  // A deeper reorg after the credit: the credit stands and the operator is told, once.
  await venue.admin('/chain/send', { asset: 'ETH', address, amount: '0.5' });
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 3 });
  await until(() => balance(bob, 'ETH'), (b) => b?.available === '0.50000000', 'the second deposit');
  await venue.admin('/chain/reorg', { network: 'ethereum', depth: 3 });
  await venue.admin('/chain/reorg', { network: 'ethereum', depth: 1 });
  const credited = (await signed(bob, 'GET', '/api/v1/deposits?asset=ETH')).body.deposits[0];
  assert.equal(credited.state, 'credited');
  assert.equal(venue.exchange.funding.auditTrail(`dep:${credited.id}`).filter((a) => a.action === 'credited_deposit_dropped').length, 1);
  assert.equal((await balance(bob, 'ETH'))?.available, '0.50000000');
  assertLedgerSound();
});

test('tags route deposits on shared addresses to the right user (XRP dt, XLM memoId, XEM message); an unknown tag credits nobody', async () => {
  const carol = await user('tag-carol@example.com');
  const dave = await user('tag-dave@example.com');
  const carolTag = (await signed(carol, 'GET', '/api/v1/deposit-address?asset=XRP')).body.tag;
  const daveTag = (await signed(dave, 'GET', '/api/v1/deposit-address?asset=XRP')).body.tag;
  const shared = 'rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh';
  await venue.admin('/chain/send', { asset: 'XRP', address: shared, tag: carolTag, amount: '100' });
  await venue.admin('/chain/send', { asset: 'XRP', address: shared, tag: daveTag, amount: '7' });
  await venue.admin('/chain/send', { asset: 'XRP', address: shared, tag: '999999', amount: '5' });
  await venue.admin('/chain/mine', { network: 'ripple', blocks: 1 });
  await until(() => balance(dave, 'XRP'), (b) => b?.available === '7.000000', 'the tagged credit');
  assert.equal((await balance(carol, 'XRP'))?.available, '100.000000');
  assert.equal(venue.exchange.engine.external.balance(venue.exchange.engine.assets.get('XRP')!).available, -107_000_000, 'the untagged 5 XRP were credited to nobody');
  // XLM by memoId and XEM by message text, each on one shared address.
  for (const [asset, network, amount, shown] of [['XLM', 'stellar', '12.5', '12.5000000'], ['XEM', 'nem', '3', '3.000000']] as const) {
    const target = (await signed(dave, 'GET', `/api/v1/deposit-address?asset=${asset}`)).body;
    assert.equal(target.tag, String(dave.id));
    await venue.admin('/chain/send', { asset, address: target.address, tag: target.tag, amount });
    await venue.admin('/chain/mine', { network, blocks: 1 });
    await until(() => balance(dave, asset), (b) => b?.available === shown, `${asset} by tag`);
    assert.equal((await balance(carol, asset))?.available ?? '0', '0');
  }
  assertLedgerSound();
});

test('invalid destinations get clear 4xx: Bitcoin, Ethereum, Stellar and NEM checksums, dt / memoId / message tags, IBAN, BIC and CLABE', async () => {
  const erin = await user('invalid@example.com');
  const bad = async (body: Record<string, unknown>, code: string, path = '/api/v1/withdrawal-addresses') => {
    const response = await signed(erin, 'POST', path, body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(response.body.error.code, code, JSON.stringify(response.body));
    return response.body.error.message as string;
  };
  assert.match(await bad({ asset: 'BTC', address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx' }, 'INVALID_ADDRESS'), /Bitcoin/);
  assert.match(await bad({ asset: 'BTC', address: '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3' }, 'INVALID_ADDRESS'), /Bitcoin/);
  assert.match(await bad({ asset: 'ETH', address: '0x52908400098527886E0F7030069857D2E4169Ee7' }, 'INVALID_ADDRESS'), /EIP-55/);
  assert.match(await bad({ asset: 'ETH', address: '0x5290840009852788' }, 'INVALID_ADDRESS'), /40 hex/);
  assert.match(await bad({ asset: 'XRP', address: 'rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh', tag: '4294967296' }, 'INVALID_TAG'), /dt/);
  assert.match(await bad({ asset: 'BTC', address: BTC_DESTINATION, tag: '1' }, 'INVALID_TAG'), /no tag/);
  assert.match(await bad({ asset: 'XLM', address: 'GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN6' }, 'INVALID_ADDRESS'), /Stellar/);
  assert.match(await bad({ asset: 'XLM', address: 'GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7', tag: 'abc' }, 'INVALID_TAG'), /memoId/);
  assert.match(await bad({ asset: 'XEM', address: 'NALICE2A73DLYTP4365GNFCURAUP3XVBFO7YNYOX' }, 'INVALID_ADDRESS'), /NEM/);
  assert.match(await bad({ asset: 'XEM', address: 'NALICE2A73DLYTP4365GNFCURAUP3XVBFO7YNYOW', tag: 'bad\u0001' }, 'INVALID_TAG'), /message/);
  for (const [asset, address] of [['XLM', 'GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7'], ['XEM', 'NALICE2A73DLYTP4365GNFCURAUP3XVBFO7YNYOW']]) {
    assert.equal((await signed(erin, 'POST', '/api/v1/withdrawal-addresses', { asset, address, tag: asset === 'XEM' ? 'invoice 42' : '42' })).status, 201, address);
  }
  assert.match(await bad({ rail: 'sepa', holder: 'Erin', iban: 'DE89370400440532013001', bic: 'COBADEFFXXX' }, 'INVALID_BANK_ACCOUNT', '/api/v1/bank-accounts'), /IBAN/);
  assert.match(await bad({ rail: 'sepa', holder: 'Erin', iban: 'DE89370400440532013000', bic: 'COBA' }, 'INVALID_BANK_ACCOUNT', '/api/v1/bank-accounts'), /BIC/);
  assert.match(await bad({ rail: 'spei', holder: 'Erin', clabe: '002010077777777772' }, 'INVALID_BANK_ACCOUNT', '/api/v1/bank-accounts'), /check digit/);
  assert.match(await bad({ rail: 'spei', holder: 'Erin', clabe: '00201007777777777' }, 'INVALID_BANK_ACCOUNT', '/api/v1/bank-accounts'), /18 digits/);
  for (const address of [BTC_DESTINATION, '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2', 'bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297']) {
    assert.equal((await signed(erin, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address })).status, 201, address);
  }
  assert.equal((await signed(erin, 'POST', '/api/v1/withdrawal-addresses', { asset: 'ETH', address: ETH_DESTINATION.toLowerCase() })).status, 201);
  assert.equal((await signed(erin, 'GET', '/api/v1/withdrawal-addresses')).body.addresses.length, 6);
});

test('a withdrawal needs an allow-listed address past its hold, and a credential change holds withdrawals again', async () => {
  const frank = await user('hold@example.com', { BTC: '1' });
  const request = (id: string) => signed(frank, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.01', address: BTC_DESTINATION, request_id: id });
  const unknown = await request('h1');
  assert.equal(unknown.status, 403);
  assert.equal(unknown.body.error.code, 'ADDRESS_NOT_ALLOWED');
  await signed(frank, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address: BTC_DESTINATION });
  const held = await request('h2');
  assert.equal(held.body.error.code, 'ADDRESS_ON_HOLD');
  now += DAY + 1;
  venue.exchange.funding.credentialsChanged(frank.id);
  assert.equal((await request('h3')).body.error.code, 'CREDENTIALS_HOLD');
  now += DAY + 1;
  const accepted = await request('h4');
  assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
  assert.equal((await balance(frank, 'BTC'))?.available, '0.98995000', 'nothing moved for the refused ones');
  const trader = await venue.trader('no-withdraw@example.com', { BTC: '1' });
  const denied = await call(venue.url, 'POST', '/api/v1/withdrawals', { credentials: trader, timestamp: now, body: { asset: 'BTC', amount: '0.01', address: BTC_DESTINATION, request_id: 'x' } });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error.code, 'PERMISSION_DENIED');
});

test('withdrawal lifecycle: funds locked, paid once, fee to the fee account, request id applies once, cancel unlocks', async () => {
  const grace = await user('lifecycle@example.com', { USDT: '1000' });
  await allow(grace, 'USDT', ETH_DESTINATION);
  const body = { asset: 'USDT', amount: '100', address: ETH_DESTINATION, request_id: 'pay-rent' };
  const first = await signed(grace, 'POST', '/api/v1/withdrawals', body);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.fee, '1.100000', '1 USDT fixed + 0.1 %');
  const again = await signed(grace, 'POST', '/api/v1/withdrawals', body);
  assert.equal(again.body.id, first.body.id, 'the same request id returns the same withdrawal');
  const done = await until(() => signed(grace, 'GET', `/api/v1/withdrawals/${first.body.id}`), (r) => r.body.state === 'completed', 'completion');
  assert.match(done.body.txid, /^0x[0-9a-f]{64}$/);
  assert.deepEqual(await balance(grace, 'USDT').then((b) => [b?.available, b?.locked]), ['898.900000', '0.000000']);
  const outgoing = (await call(venue.url, 'GET', '/admin/v1/chain/outgoing', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } })).body.transactions
    .filter((t: { send_id: string }) => t.send_id === `wd:${first.body.id}`);
  assert.equal(outgoing.length, 1);
  assert.equal(outgoing[0].amount, '100.000000', 'the chain pays the amount; the fee stays');
  assert.equal(venue.exchange.engine.feeAccount.balance(venue.exchange.engine.assets.get('USDT')!).available >= 1_100_000, true);

  // Below the minimum, and more than the balance: refused, nothing locked.
  const small = await signed(grace, 'POST', '/api/v1/withdrawals', { ...body, amount: '9.99', request_id: 'small' });
  assert.deepEqual(small.body.error, { code: 'BELOW_MINIMUM', message: 'the minimum withdrawal is 10.000000 USDT' }, 'amounts in errors are decimals of the asset, not minor units');
  const tooMuch = await signed(grace, 'POST', '/api/v1/withdrawals', { ...body, amount: '898.9', request_id: 'big' });
  assert.equal(tooMuch.body.error.code, 'INSUFFICIENT_BALANCE');
  assert.equal((await signed(grace, 'POST', '/api/v1/withdrawals', { ...body, amount: '898.9', request_id: 'big' })).body.error.code, 'INSUFFICIENT_BALANCE', 'the same answer when repeated');
  assert.equal((await balance(grace, 'USDT'))?.locked, '0.000000');

  // A withdrawal waiting for review (above 50,000 USDT) can be cancelled: the hold goes back.
  await venue.admin('/deposits', { email: 'lifecycle@example.com', asset: 'USDT', amount: '60000' });
  await venue.admin('/users/kyc', { email: 'lifecycle@example.com', kyc: 'OK', level: 2 });
  const waiting = await signed(grace, 'POST', '/api/v1/withdrawals', { ...body, amount: '50001', request_id: 'cancel-me' });
  assert.equal(waiting.body.state, 'review');
  assert.equal((await balance(grace, 'USDT'))?.locked, '50052.001000');
  const cancelled = await signed(grace, 'DELETE', `/api/v1/withdrawals/${waiting.body.id}`);
  assert.equal(cancelled.body.state, 'cancelled');
  assert.equal((await balance(grace, 'USDT'))?.locked, '0.000000');
  assert.equal((await signed(grace, 'DELETE', `/api/v1/withdrawals/${waiting.body.id}`)).status, 409);
  const history = (await signed(grace, 'GET', '/api/v1/withdrawals?limit=2')).body.withdrawals;
  assert.deepEqual(history.map((w: { request_id: string; state: string }) => [w.request_id, w.state]), [['cancel-me', 'cancelled'], ['big', 'rejected']]);
  assertLedgerSound();
});

test('1,000 concurrent withdrawal requests against a balance that covers exactly 137 of them: exactly 137 accepted, nothing negative', async () => {
  const henry = await user('concurrent@example.com', { USDT: '1508.37' }); // 137 × (10 + 1.01 fee)
  await allow(henry, 'USDT', ETH_DESTINATION);
  const responses = await Promise.all(Array.from({ length: 1_000 }, (_, i) =>
    signed(henry, 'POST', '/api/v1/withdrawals', { asset: 'USDT', amount: '10', address: ETH_DESTINATION, request_id: `c${i}` })));
  const accepted = responses.filter((r) => r.status === 201);
  assert.equal(accepted.length, 137);
  for (const refused of responses.filter((r) => r.status !== 201)) assert.equal(refused.body.error.code, 'INSUFFICIENT_BALANCE');
  await until(async () => (await signed(henry, 'GET', '/api/v1/withdrawals?state=completed&limit=500')).body.withdrawals.length, (n) => n === 137, 'all paid');
  const b = await balance(henry, 'USDT');
  assert.deepEqual([b?.available, b?.locked], ['0.000000', '0.000000']);
  for (const b of venue.exchange.engine.balances(henry.account)) assert.ok(b.available >= 0 && b.locked >= 0 && b.reserved >= 0, JSON.stringify(b));
  assertLedgerSound();
});

/** A trader who turned two-factor authentication on over their session, and the code of the venue's clock. */
async function twoFactorUser(email: string, funds: Record<string, string>): Promise<{ trader: Awaited<ReturnType<typeof user>>; code: () => string }> {
  const trader = await user(email, funds);
  const login = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email, password: 'correct horse battery' } });
  const auth = { authorization: `Bearer ${login.body.token}` };
  const { code } = await enableTwoFactor(venue.url, auth, 'correct horse battery', () => now);
  now += 30_000;
  return { trader, code };
}

test('two-factor users: a withdrawal without a code waits; wrong and replayed codes are refused; the right code pays', async () => {
  const { trader: ivy, code } = await twoFactorUser('twofactor@example.com', { BTC: '1' });
  const addAddress = await signed(ivy, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address: BTC_DESTINATION });
  assert.equal(addAddress.body.error.code, 'TOTP_REQUIRED', 'allow-listing needs the second factor');
  assert.equal((await signed(ivy, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address: BTC_DESTINATION, totp: code() })).status, 201);
  now += DAY + 30_000; // past the address hold and the hold after enabling 2FA

  const waiting = await signed(ivy, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.1', address: BTC_DESTINATION, request_id: 'tf1' });
  assert.equal(waiting.body.state, 'awaiting_2fa');
  assert.equal((await balance(ivy, 'BTC'))?.locked, '0.10005000', 'locked while it waits');
  const wrongCode = code() === '000000' ? '111111' : '000000';
  const wrong = await signed(ivy, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, { totp: wrongCode });
  assert.equal(wrong.body.error.code, 'INVALID_TOTP');
  const missing = await signed(ivy, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, {});
  assert.equal(missing.status, 400);
  const used = code();
  const confirmed = await signed(ivy, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, { totp: used });
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  assert.notEqual(confirmed.body.state, 'awaiting_2fa');
  const second = await signed(ivy, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.1', address: BTC_DESTINATION, request_id: 'tf2', totp: used });
  assert.equal(second.body.error.code, 'INVALID_TOTP', 'a code is accepted once');
  await until(() => signed(ivy, 'GET', `/api/v1/withdrawals/${waiting.body.id}`), (r) => r.body.state === 'completed', 'completion');
  const paid = (await call(venue.url, 'GET', '/admin/v1/chain/outgoing', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } })).body.transactions
    .filter((t: { send_id: string }) => t.send_id === `wd:${waiting.body.id}`);
  assert.equal(paid.length, 1);
});

test('wrong two-factor codes on the funding routes (allow-listing, a withdrawal, its confirmation) count toward the lockout, so a stolen withdraw key cannot guess six digits at full rate', async () => {
  const limits = DEFAULT_AUTH_OPTIONS; // the venue's
  now += limits.lockoutMs + 60_001; // earlier tests' failures from this address are past their window
  const { trader: kim, code } = await twoFactorUser('guessed@example.com', { BTC: '1' });
  assert.equal((await signed(kim, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address: BTC_DESTINATION, totp: code() })).status, 201);
  now += DAY + 30_000;
  const waiting = await signed(kim, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.1', address: BTC_DESTINATION, request_id: 'g1' });
  assert.equal(waiting.body.state, 'awaiting_2fa');
  const wrong = () => (code() === '000000' ? '111111' : '000000');
  const guesses = [
    () => signed(kim, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, { totp: wrong() }),
    () => signed(kim, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.1', address: BTC_DESTINATION, request_id: `g${now}`, totp: wrong() }),
    () => signed(kim, 'POST', '/api/v1/withdrawal-addresses', { asset: 'BTC', address: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', totp: wrong() }),
  ];
  for (let i = 0; i < limits.failuresBeforeLockout; i++) assert.equal((await guesses[i % 3]!()).body.error.code, 'INVALID_TOTP', `guess ${i + 1}`);
  const locked = await signed(kim, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, { totp: code() });
  assert.deepEqual([locked.status, locked.body.error.code], [429, 'LOCKED_OUT'], 'even the right code waits out the lockout');
  now += limits.lockoutMs + 1;
  const confirmed = await signed(kim, 'POST', `/api/v1/withdrawals/${waiting.body.id}/confirm`, { totp: code() });
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  assert.equal((await signed(kim, 'GET', '/api/v1/withdrawal-addresses')).body.addresses.length, 1, 'no guess allow-listed anything');
});

test('above the approval threshold a withdrawal waits for an operator; approval and rejection are recorded with the operator', async () => {
  const jack = await user('review@example.com', { BTC: '10' });
  await allow(jack, 'BTC', BTC_DESTINATION);
  now += 1;
  const big = await signed(jack, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '2.5', address: BTC_DESTINATION, request_id: 'big1' });
  assert.equal(big.status, 400, 'level 0 daily limit is 0.5 BTC');
  assert.deepEqual(big.body.error, { code: 'DAILY_LIMIT', message: 'this withdrawal would exceed the 24 h limit of 0.50000000 BTC for level 0: 0.50000000 BTC left' });
  const limits = async () => (await signed(jack, 'GET', '/api/v1/withdrawals/limits')).body;
  const btcLimit = async () => (await limits()).assets.find((a: { asset: string }) => a.asset === 'BTC');
  assert.deepEqual(await btcLimit(), { asset: 'BTC', daily_limit: '0.50000000', used_24h: '0.00000000', remaining: '0.50000000' }, 'a user sees what they may still withdraw');
  await venue.admin('/users/kyc', { email: 'review@example.com', kyc: 'OK', level: 2 });
  const first = await signed(jack, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '2.5', address: BTC_DESTINATION, request_id: 'big2' });
  const second = await signed(jack, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '3', address: BTC_DESTINATION, request_id: 'big3' });
  assert.deepEqual([first.body.state, second.body.state], ['review', 'review']);
  assert.equal((await limits()).level, 2);
  assert.deepEqual(await btcLimit(), { asset: 'BTC', daily_limit: '50.00000000', used_24h: '5.50000000', remaining: '44.50000000' }, 'the level\'s limit, less what the last 24 h requested');
  const approved = await venue.admin(`/withdrawals/${first.body.id}/approve`, { operator: 'olivia' });
  assert.equal(approved.body.approved_by, 'olivia');
  const rejected = await venue.admin(`/withdrawals/${second.body.id}/reject`, { operator: 'oscar', reason: 'unusual destination' });
  assert.equal(rejected.body.state, 'rejected');
  assert.equal((await venue.admin(`/withdrawals/${second.body.id}/approve`, { operator: 'olivia' })).status, 409);
  await until(() => signed(jack, 'GET', `/api/v1/withdrawals/${first.body.id}`), (r) => r.body.state === 'completed', 'the approved one');
  const audit = await call(venue.url, 'GET', `/admin/v1/withdrawals/${first.body.id}/audit`, { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
  assert.deepEqual(audit.body.audit.map((a: { actor: string; action: string }) => [a.actor, a.action]), [['olivia', 'withdrawal_approved']]);
  assert.equal((await balance(jack, 'BTC'))?.available, '7.49995000', 'the rejected one is unlocked; the approved one paid with its fee');
  assertLedgerSound();
});

/** The newest mail to `to` with this subject. */
async function lastMail(to: string, subject: string): Promise<ReadMail> {
  await venue.app.mailer.settled();
  const found = (await outbox(venue.dataDir, 0)).filter((m) => m.to === to && m.subject === subject).at(-1);
  assert.ok(found !== undefined, `a mail "${subject}" to ${to}`);
  return found;
}

test('a new withdraw key (HMAC or Ed25519) made by the user, a password change or reset, two-factor turned on, off or reset, by the user or the operator, or a change of address, holds withdrawals again', async () => {
  const pat = await user('pat@example.com', { BTC: '1' });
  await allow(pat, 'BTC', BTC_DESTINATION);
  const withdraw = (id: string) => signed(pat, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.01', address: BTC_DESTINATION, request_id: id });
  // Each step comes a day after the last, when a session from before has expired: each logs in afresh.
  const asUser = async (method: string, path: string, body: Record<string, unknown>) => {
    const token = (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'pat@example.com', password: 'correct horse battery' } })).body.token as string;
    return call(venue.url, method, path, { headers: { authorization: `Bearer ${token}` }, body });
  };
  const newKey = (body: Record<string, unknown>) => asUser('POST', '/api/v1/auth/apikeys', { permissions: ['read', 'withdraw'], ip: ['127.0.0.1'], ...body });
  const { publicKey } = (await import('node:crypto')).generateKeyPairSync('ed25519');
  let totpSecret = '';
  const totp = () => generateSync({ secret: totpSecret, epoch: Math.floor(now / 1000) });
  const changes: [string, () => Promise<ApiResponse>][] = [
    ['the user making an HMAC withdraw key', () => newKey({})],
    ['the user making an Ed25519 withdraw key', () => newKey({ public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString() })],
    ['the user changing the password', () => asUser('POST', '/api/v1/auth/password', { current_password: 'correct horse battery', new_password: 'another horse' })],
    ['the operator setting it', () => venue.admin('/users/password', { email: 'pat@example.com', password: 'a third horse' })],
    ['the operator resetting two-factor', () => venue.admin('/users/reset-2fa', { email: 'pat@example.com' })],
    ['the user resetting the password by mail', async () => {
      await call(venue.url, 'POST', '/api/v1/auth/password-reset', { body: { email: 'pat@example.com' } });
      const token = codeIn(await lastMail('pat@example.com', 'Reset your Bourse password'));
      return call(venue.url, 'POST', '/api/v1/auth/password-reset/confirm', { body: { token, new_password: 'a fourth horse' } });
    }],
    ['the user moving to another address', async () => {
      const token = (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'pat@example.com', password: 'a fourth horse' } })).body.token as string;
      await call(venue.url, 'POST', '/api/v1/auth/email', { headers: { authorization: `Bearer ${token}` }, body: { new_email: 'pat.moved@example.com', password: 'a fourth horse' } });
      return call(venue.url, 'POST', '/api/v1/auth/email/confirm', { body: { token: codeIn(await lastMail('pat.moved@example.com', 'Confirm your new email for Bourse')) } });
    }],
    ['the operator moving them back', () => venue.admin('/users/email', { email: 'pat.moved@example.com', new_email: 'pat@example.com' })],
    ['the user turning two-factor on', async () => {
      const token = (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'pat@example.com', password: 'a fourth horse' } })).body.token as string;
      const setup = await call(venue.url, 'POST', '/api/v1/auth/2fa/setup', { headers: { authorization: `Bearer ${token}` }, body: { password: 'a fourth horse' } });
      totpSecret = setup.body.secret;
      return call(venue.url, 'POST', '/api/v1/auth/2fa/enable', { headers: { authorization: `Bearer ${token}` }, body: { code: totp() } });
    }],
    ['the user turning it off', async () => {
      const token = (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'pat@example.com', password: 'a fourth horse', totp: totp() } })).body.token as string;
      now += 30_000;
      return call(venue.url, 'POST', '/api/v1/auth/2fa/disable', { headers: { authorization: `Bearer ${token}` }, body: { password: 'a fourth horse', totp: totp() } });
    }],
  ];
  for (const [i, [what, act]] of changes.entries()) {
    assert.equal((await withdraw(`pat-ok-${i}`)).status, 201, `before ${what}`);
    assert.ok([200, 201].includes((await act()).status), what);
    const held = await withdraw(`pat-held-${i}`);
    assert.deepEqual([held.status, held.body.error?.code], [403, 'CREDENTIALS_HOLD'], what);
    now += DAY + 1_000;
  }
});

test('a disabled user cannot log in or use any key and their socket closes; withdrawals not yet sent are cancelled and unlocked, orders stay; enabled again, their keys work', async () => {
  const frozen = await user('frozen@example.com', { BTC: '10', USDT: '1000' });
  await allow(frozen, 'BTC', BTC_DESTINATION);
  await venue.admin('/users/kyc', { email: 'frozen@example.com', kyc: 'OK', level: 2 });
  const withdrawal = await signed(frozen, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '2.5', address: BTC_DESTINATION, request_id: 'frozen1' });
  assert.equal(withdrawal.body.state, 'review', JSON.stringify(withdrawal.body));
  assert.equal((await signed(frozen, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '1000.00', quantity: '0.1000' })).status, 201);
  const login = (password = 'correct horse battery') => call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'frozen@example.com', password } });
  const session = (await login()).body.token as string;
  const socket = await SocketClient.connect(venue.url);
  now += 1;
  await socket.login(frozen, now);

  const disabledAt = now;
  const disabled = await venue.admin('/users/disable', { email: 'frozen@example.com' });
  assert.deepEqual(disabled.body, { email: 'frozen@example.com', disabled: true, changed: true, withdrawals_cancelled: [withdrawal.body.id] }, 'the withdrawal held for review is cancelled');
  const refused = await signed(frozen, 'GET', '/api/v1/account');
  assert.deepEqual([refused.status, refused.body.error.code], [403, 'USER_DISABLED']);
  const forged = await call(venue.url, 'GET', '/api/v1/account', { credentials: { key: frozen.key, secret: 'not the secret' }, timestamp: ++now });
  assert.equal(forged.body.error.code, 'INVALID_SIGNATURE', 'only the holder of the secret learns that the user is disabled');
  assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: { authorization: `Bearer ${session}` } })).status, 401, 'sessions ended');
  assert.deepEqual([(await login()).status, (await login()).body.error.code], [403, 'USER_DISABLED']);
  assert.equal((await login('a wrong password')).body.error.code, 'INVALID_CREDENTIALS');
  for (let i = 0; i < 100 && socket.closed === null; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(socket.closed, { code: 1008, reason: 'user disabled' });

  const engine = venue.exchange.engine;
  assert.deepEqual(engine.balance(frozen.account, 'BTC'), { asset: 'BTC', available: 1_000_000_000, reserved: 0, locked: 0 }, 'the withdrawal is unlocked');
  const listed = await call(venue.url, 'GET', '/admin/v1/withdrawals?state=cancelled', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
  const row = listed.body.withdrawals.find((w: { id: number }) => w.id === withdrawal.body.id);
  assert.deepEqual([row?.state, row?.reason], ['cancelled', 'USER_DISABLED']);
  assert.equal(engine.openOrdersOf(frozen.account).length, 1, 'orders stay: restricting trading is a separate step');
  const shown = await call(venue.url, 'GET', '/admin/v1/users?email=frozen%40example.com', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
  assert.equal(shown.body.disabled_at, disabledAt);
  assert.equal((await venue.admin('/users/disable', { email: 'frozen@example.com' })).body.changed, false);

  assert.equal((await venue.admin('/users/enable', { email: 'frozen@example.com' })).body.changed, true);
  assert.equal((await signed(frozen, 'GET', '/api/v1/account')).status, 200, 'the keys work again');
  assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: { authorization: `Bearer ${session}` } })).status, 401, 'an ended session stays ended');
  assert.equal((await login()).status, 200);
  assertLedgerSound();
});

test('SEPA and SPEI withdrawals go to the user\'s bank account of the right rail; a bank deposit credits by reference once', async () => {
  const kate = await user('fiat@example.com');
  const reference = (await signed(kate, 'GET', '/api/v1/deposit-reference')).body.reference;
  const record = (bankReference: string, extra: Record<string, unknown> = {}) =>
    venue.admin('/fiat/deposits', { reference, asset: 'EUR', amount: '2500.00', bank_reference: bankReference, operator: 'olivia', ...extra });
  assert.equal((await record('SEPA-0001')).status, 201);
  assert.equal((await record('SEPA-0001')).body.duplicate, true, 'the same bank transfer recorded twice credits once');
  assert.equal((await record('SEPA-0001', { amount: '1.00' })).status, 409);
  const typo = await venue.admin('/fiat/deposits', { reference: `${reference.slice(0, -1)}${(Number(reference.at(-1)) + 1) % 10}`, asset: 'EUR', amount: '1', bank_reference: 'SEPA-0002', operator: 'olivia' });
  assert.equal(typo.body.error.code, 'INVALID_REFERENCE');
  await venue.admin('/fiat/deposits', { reference, asset: 'MXN', amount: '5000.00', bank_reference: 'SPEI-77', operator: 'olivia' });
  assert.equal((await balance(kate, 'EUR'))?.available, '2500.00');

  const iban = await signed(kate, 'POST', '/api/v1/bank-accounts', { rail: 'sepa', holder: 'Kate Doe', iban: 'DE89 3704 0044 0532 0130 00', bic: 'COBADEFFXXX' });
  const clabe = await signed(kate, 'POST', '/api/v1/bank-accounts', { rail: 'spei', holder: 'Kate Doe', clabe: '002010077777777771' });
  assert.equal(iban.body.iban, 'DE89370400440532013000');
  const wrongRail = await signed(kate, 'POST', '/api/v1/withdrawals', { asset: 'EUR', amount: '100', bank_account_id: clabe.body.id, request_id: 'f0' });
  assert.equal(wrongRail.body.error.code, 'INVALID_DESTINATION');
  const sepa = await signed(kate, 'POST', '/api/v1/withdrawals', { asset: 'EUR', amount: '100', bank_account_id: iban.body.id, request_id: 'f1' });
  const spei = await signed(kate, 'POST', '/api/v1/withdrawals', { asset: 'MXN', amount: '1000', bank_account_id: clabe.body.id, request_id: 'f2' });
  assert.equal(sepa.status, 201, JSON.stringify(sepa.body));
  await until(() => signed(kate, 'GET', `/api/v1/withdrawals/${spei.body.id}`), (r) => r.body.state === 'completed', 'SPEI payout');
  await until(() => signed(kate, 'GET', `/api/v1/withdrawals/${sepa.body.id}`), (r) => r.body.state === 'completed', 'SEPA payout');
  assert.equal((await balance(kate, 'EUR'))?.available, '2399.00');
  assert.equal((await balance(kate, 'MXN'))?.available, '3995.00');
  const other = await user('fiat-other@example.com');
  const foreign = await signed(other, 'POST', '/api/v1/withdrawals', { asset: 'EUR', amount: '100', bank_account_id: iban.body.id, request_id: 'steal' });
  assert.equal(foreign.body.error.code, 'INVALID_DESTINATION', 'another user\'s bank account is not a destination');
  assertLedgerSound();
});

test('transfers to another user by email are instant, free, atomic and apply once per request id', async () => {
  const liam = await user('pay-liam@example.com', { USDT: '50' });
  const mia = await user('pay-mia@example.com');
  const pay = (amount: string, id: string, to = 'pay-mia@example.com') => signed(liam, 'POST', '/api/v1/transfers', { to_email: to, asset: 'USDT', amount, request_id: id });
  assert.equal((await pay('20', 't1')).status, 201);
  assert.equal((await pay('20', 't1')).status, 200, 'replayed request id: no second transfer');
  assert.equal((await pay('31', 't2')).body.error.code, 'INSUFFICIENT_BALANCE');
  assert.equal((await pay('1', 't3', 'nobody@example.com')).body.error.code, 'UNKNOWN_RECIPIENT');
  assert.equal((await pay('1', 't4', 'pay-liam@example.com')).body.error.code, 'SAME_ACCOUNT');
  assert.equal((await balance(liam, 'USDT'))?.available, '30.000000');
  assert.equal((await balance(mia, 'USDT'))?.available, '20.000000');
  const history = (await signed(mia, 'GET', '/api/v1/transfers')).body.transfers;
  assert.deepEqual(history.map((t: { direction: string; counterparty: string; amount: string }) => [t.direction, t.counterparty, t.amount]), [['in', 'pay-liam@example.com', '20.000000']]);
  assertLedgerSound();
});

test('the funding socket channel reports deposit and withdrawal state changes to their owner', async () => {
  const noah = await user('socket@example.com', { ETH: '5' });
  await allow(noah, 'ETH', ETH_DESTINATION);
  const socket = await SocketClient.connect(venue.url);
  await socket.login(noah, now);
  socket.send({ op: 'subscribe', channel: 'funding' });
  await socket.next((m) => m.event === 'subscribed');
  const messages = socket.messages;
  const { address } = (await signed(noah, 'GET', '/api/v1/deposit-address?asset=ETH')).body;
  await venue.admin('/chain/send', { asset: 'ETH', address, amount: '0.5' });
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 3 });
  await signed(noah, 'POST', '/api/v1/withdrawals', { asset: 'ETH', amount: '1', address: ETH_DESTINATION, request_id: 'ws1' });
  await until(() => messages, (m) => m.some((x) => x.withdrawal?.state === 'completed'), 'withdrawal completed on the socket');
  await until(() => messages, (m) => m.some((x) => x.deposit?.state === 'credited'), 'deposit credited on the socket');
  const states = messages.filter((x) => x.channel === 'funding' && x.withdrawal !== undefined).map((x) => x.withdrawal.state);
  assert.deepEqual(states, ['approved', 'sending', 'sent', 'completed']);
  socket.close();
});

test('a chain node that is down leaves withdrawals sending and retried; an operator can fail one the chain never took, unlocking it', async () => {
  const olga = await user('stuck@example.com', { ETH: '5' });
  await allow(olga, 'ETH', ETH_DESTINATION);
  const token = { authorization: `Bearer ${venue.exchange.adminToken}` };
  await venue.admin('/chain/pause', { network: 'ethereum' });
  const retried = await signed(olga, 'POST', '/api/v1/withdrawals', { asset: 'ETH', amount: '1', address: ETH_DESTINATION, request_id: 's1' });
  const abandoned = await signed(olga, 'POST', '/api/v1/withdrawals', { asset: 'ETH', amount: '2', address: ETH_DESTINATION, request_id: 's2' });
  await until(() => signed(olga, 'GET', `/api/v1/withdrawals/${abandoned.body.id}`), (r) => r.body.state === 'sending', 'stuck in sending');
  assert.equal((await balance(olga, 'ETH'))?.locked, '3.00200000');
  const failed = await venue.admin(`/withdrawals/${abandoned.body.id}/fail`, { operator: 'olivia', reason: 'node rejects the payment' });
  assert.equal(failed.body.state, 'failed', JSON.stringify(failed.body));
  assert.equal((await balance(olga, 'ETH'))?.locked, '1.00100000', 'the failed one is unlocked');
  await venue.admin('/chain/resume', { network: 'ethereum' });
  await until(() => signed(olga, 'GET', `/api/v1/withdrawals/${retried.body.id}`), (r) => r.body.state === 'completed', 'the retried one');
  const outgoing = (await call(venue.url, 'GET', '/admin/v1/chain/outgoing', { headers: token })).body.transactions.map((t: { send_id: string }) => t.send_id);
  assert.ok(outgoing.includes(`wd:${retried.body.id}`));
  assert.ok(!outgoing.includes(`wd:${abandoned.body.id}`), 'the failed one was never paid');
  assert.equal((await venue.admin(`/withdrawals/${retried.body.id}/fail`, { operator: 'olivia', reason: 'too late' })).status, 409);
  assert.deepEqual(await balance(olga, 'ETH').then((b) => [b?.available, b?.locked]), ['3.99900000', '0.00000000']);
  assertLedgerSound();
});

test('transfers between a user\'s own accounts: a sub-account has its own balances and keys; another user\'s account is not a destination', async () => {
  const pia = await user('accounts-pia@example.com', { USDT: '500' });
  const created = await signed(pia, 'POST', '/api/v1/accounts', { label: 'bot' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const bot = created.body.account as number;
  assert.ok(bot > 1_000_000_000);
  const listed = (await signed(pia, 'GET', '/api/v1/accounts')).body.accounts;
  assert.deepEqual(listed.map((a: { label: string; main: boolean }) => [a.label, a.main]), [['main', true], ['bot', false]]);

  const moved = await signed(pia, 'POST', '/api/v1/transfers', { to_account: bot, asset: 'USDT', amount: '120.5', request_id: 'fund-bot' });
  assert.equal(moved.status, 201, JSON.stringify(moved.body));
  assert.deepEqual([moved.body.direction, moved.body.from_account, moved.body.to_account], ['internal', pia.account, bot]);
  assert.equal((await signed(pia, 'POST', '/api/v1/transfers', { to_account: bot, asset: 'USDT', amount: '120.5', request_id: 'fund-bot' })).status, 200, 'once per request id');
  assert.equal((await balance(pia, 'USDT'))?.available, '379.500000');

  const botKey = await venue.admin('/apikeys', { email: 'accounts-pia@example.com', permissions: ['read', 'trade', 'withdraw'], ip: ['127.0.0.1'], account: bot });
  assert.equal(botKey.body.account, bot);
  const botCredentials = { key: botKey.body.key, secret: botKey.body.secret };
  assert.equal((await balance(botCredentials, 'USDT'))?.available, '120.500000');
  const order = await signed(botCredentials, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.5000' });
  assert.equal(order.status, 201, JSON.stringify(order.body));
  assert.equal((await balance(botCredentials, 'USDT'))?.reserved, '50.000000', 'the sub-account trades with its own funds');
  const back = await signed(botCredentials, 'POST', '/api/v1/transfers', { to_account: pia.account, asset: 'USDT', amount: '70.5', request_id: 'back' });
  assert.equal(back.status, 201, JSON.stringify(back.body));
  assert.equal((await signed(botCredentials, 'POST', '/api/v1/transfers', { to_account: pia.account, asset: 'USDT', amount: '0.5', request_id: 'too-much' })).body.error.code, 'INSUFFICIENT_BALANCE', 'reserved funds cannot move');
  assert.equal((await balance(pia, 'USDT'))?.available, '450.000000');

  const quinn = await user('accounts-quinn@example.com');
  const foreign = await signed(quinn, 'POST', '/api/v1/transfers', { to_account: bot, asset: 'USDT', amount: '1', request_id: 'x' });
  assert.equal(foreign.body.error.code, 'UNKNOWN_ACCOUNT');
  const foreignKey = await venue.admin('/apikeys', { email: 'accounts-quinn@example.com', permissions: ['read'], account: bot });
  assert.equal(foreignKey.status, 400, 'a key cannot be bound to another user\'s account');
  assert.equal((await signed(pia, 'POST', '/api/v1/transfers', { to_account: pia.account, asset: 'USDT', amount: '1', request_id: 'self' })).body.error.code, 'SAME_ACCOUNT');
  assert.equal((await signed(pia, 'POST', '/api/v1/transfers', { to_account: bot, to_email: 'accounts-quinn@example.com', asset: 'USDT', amount: '1', request_id: 'both' })).status, 400);
  assertLedgerSound();
});

test('funding listings page as the history listings do: newest first below an id, oldest first after one, and by time range, with links to the next page', async () => {
  const payer = await user('pager-payer@example.com', { USDT: '100' });
  await user('pager-payee@example.com');
  for (let i = 1; i <= 3; i++) {
    now += 1_000;
    const sent = await signed(payer, 'POST', '/api/v1/transfers', { to_email: 'pager-payee@example.com', asset: 'USDT', amount: `${i}`, request_id: `pay-${i}` });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
  }
  const list = async (query: string) => (await signed(payer, 'GET', `/api/v1/transfers${query}`)).body;
  const amounts = (page: { transfers: { amount: string }[] }) => page.transfers.map((t) => t.amount);
  const times: number[] = (await list('?after=0')).transfers.map((t: { created_at: number }) => t.created_at);
  const newest = await list('?limit=2');
  assert.deepEqual([amounts(newest), newest.next_after], [['3.000000', '2.000000'], null]);
  assert.deepEqual(amounts(await list(`?limit=2&before=${newest.next_before}`)), ['1.000000']);
  const oldest = await list('?limit=2&after=0');
  assert.deepEqual([amounts(oldest), oldest.next_before], [['1.000000', '2.000000'], null]);
  assert.deepEqual(amounts(await list(`?limit=2&after=${oldest.next_after}`)), ['3.000000']);
  assert.deepEqual(amounts(await list(`?from=${times[1]}&to=${times[1]}`)), ['2.000000'], 'both ends included');
  assert.deepEqual(amounts(await list(`?after=0&from=${times[1]}`)), ['2.000000', '3.000000']);
  const refused = await signed(payer, 'GET', `/api/v1/transfers?from=${times[2]}&to=${times[0]}`);
  assert.deepEqual([refused.status, refused.body.error.code], [400, 'INVALID_REQUEST']);
  assert.equal((await signed(payer, 'GET', '/api/v1/deposits?after=0&before=5')).status, 400);
  assert.equal((await signed(payer, 'GET', '/api/v1/withdrawals?after=0')).body.next_after, null);
});

test('an operator suspends an asset\'s withdrawals for wallet maintenance: new requests are refused with the reason, an approved one waits locked, and on resume it is sent; other assets go on', async () => {
  const kim = await user('suspend@example.com', { BTC: '10', USDT: '1000' });
  await venue.admin('/users/kyc', { email: 'suspend@example.com', kyc: 'OK', level: 2 });
  await allow(kim, 'BTC', BTC_DESTINATION);
  now += 1;
  const waiting = await signed(kim, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '2.5', address: BTC_DESTINATION, request_id: 'before-maintenance' });
  assert.equal(waiting.body.state, 'review');

  const suspended = await venue.admin('/withdrawals/suspend', { asset: 'BTC', reason: 'Bitcoin node upgrade until 14:00 UTC', operator: 'olivia' });
  assert.deepEqual([suspended.status, suspended.body.withdrawals, suspended.body.actor], [200, 'suspended', 'olivia']);
  const refused = await signed(kim, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '0.1', address: BTC_DESTINATION, request_id: 'during-maintenance' });
  assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.message], [503, 'WITHDRAWALS_SUSPENDED', 'BTC withdrawals are suspended: Bitcoin node upgrade until 14:00 UTC']);
  const assets = (await call(venue.url, 'GET', '/api/v1/funding/assets')).body.assets as { asset: string; withdrawals: string; notice: string | null }[];
  assert.deepEqual(assets.filter((a) => a.asset === 'BTC' || a.asset === 'USDT').map((a) => [a.asset, a.withdrawals, a.notice]),
    [['BTC', 'suspended', 'Bitcoin node upgrade until 14:00 UTC'], ['USDT', 'enabled', null]]);

  assert.equal((await venue.admin(`/withdrawals/${waiting.body.id}/approve`, { operator: 'olivia' })).body.state, 'approved');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const held = await signed(kim, 'GET', `/api/v1/withdrawals/${waiting.body.id}`);
  assert.deepEqual([held.body.state, held.body.held_reason], ['approved', 'Bitcoin node upgrade until 14:00 UTC'], 'approved, and waiting, with why: nothing goes to the chain while suspended');
  assert.equal((await balance(kim, 'BTC'))?.locked, '2.50005000');

  assert.deepEqual((await venue.admin('/withdrawals/resume', { asset: 'BTC', operator: 'olivia' })).body, { asset: 'BTC', withdrawals: 'enabled' });
  assert.deepEqual([(await venue.admin('/withdrawals/resume', { asset: 'BTC', operator: 'olivia' })).status], [409], 'resuming twice says so');
  await until(() => signed(kim, 'GET', `/api/v1/withdrawals/${waiting.body.id}`), (r) => r.body.state === 'completed', 'the withdrawal that waited');
  assert.equal((await venue.admin('/withdrawals/suspend', { asset: 'DOGE', reason: 'no such asset', operator: 'olivia' })).status, 404);

  // The operator's listing pages like the user's, and narrows to a user and an asset.
  const list = async (query: string) => (await venue.admin(`/withdrawals${query}`, undefined, 'GET')).body;
  const theirs = await list('?email=suspend%40example.com&asset=BTC&after=0');
  assert.deepEqual(theirs.withdrawals.map((w: { id: string; email: string }) => [w.id, w.email]), [[waiting.body.id, 'suspend@example.com']]);
  assert.equal(theirs.next_after, null);
  const page = await list('?limit=1');
  assert.equal(page.withdrawals.length, 1);
  assert.equal(Number((await list(`?limit=1&before=${page.next_before}`)).withdrawals[0].id) < Number(page.withdrawals[0].id), true, 'newest first, a page at a time');
  assert.equal((await venue.admin('/withdrawals?email=nobody%40example.com', undefined, 'GET')).status, 404);
});

test('an operator suspends an asset\'s deposits: no address is handed out (the reason instead), what arrives is followed but not credited, and on resume it is credited once', async () => {
  const lea = await user('deposit-pause@example.com');
  const address = (await signed(lea, 'GET', '/api/v1/deposit-address?asset=ETH')).body.address as string;
  const newcomer = await user('deposit-newcomer@example.com');
  const paused = await venue.admin('/deposits/suspend', { asset: 'ETH', reason: 'Ethereum hard fork', operator: 'olivia' });
  assert.deepEqual([paused.status, paused.body.deposits], [200, 'suspended']);
  const refused = await signed(newcomer, 'GET', '/api/v1/deposit-address?asset=ETH');
  assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.message], [503, 'DEPOSITS_SUSPENDED', 'ETH deposits are suspended: Ethereum hard fork']);
  const eth = ((await call(venue.url, 'GET', '/api/v1/funding/assets')).body.assets as { asset: string; deposits: string; withdrawals: string; notice: string }[]).find((a) => a.asset === 'ETH')!;
  assert.deepEqual([eth.deposits, eth.withdrawals, eth.notice], ['suspended', 'enabled', 'Ethereum hard fork']);

  await venue.admin('/chain/send', { asset: 'ETH', address, amount: '1.5' });
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 5 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const seen = (await signed(lea, 'GET', '/api/v1/deposits?asset=ETH')).body.deposits[0];
  assert.deepEqual([seen.state, seen.confirmations >= seen.required_confirmations, seen.held_reason, (await balance(lea, 'ETH'))?.available ?? '0.00000000'],
    ['confirming', true, 'Ethereum hard fork', '0.00000000'], 'followed on the chain, not credited, and the owner sees why');

  assert.deepEqual((await venue.admin('/deposits/resume', { asset: 'ETH', operator: 'olivia' })).body, { asset: 'ETH', deposits: 'enabled' });
  await until(() => balance(lea, 'ETH'), (b) => b?.available === '1.50000000', 'the credit on resume');
  await venue.admin('/chain/mine', { network: 'ethereum', blocks: 1 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal((await balance(lea, 'ETH'))?.available, '1.50000000', 'credited once');
  assert.equal((await signed(newcomer, 'GET', '/api/v1/deposit-address?asset=ETH')).status, 200);
  assert.equal((await venue.admin('/deposits/resume', { asset: 'ETH', operator: 'olivia' })).status, 409);
});

test('the owner is mailed when a withdrawal address is added, a withdrawal requested (saying how to stop it), sent (with its transaction), or rejected (its funds back), and when a deposit is credited; a request refused outright mails nothing', async () => {
  const mia = await user('mailed@example.com', { USDT: '1000', BTC: '10' });
  const allToMia = async () => {
    await venue.app.mailer.settled();
    return (await outbox(venue.dataDir, 0)).filter((m) => m.to === 'mailed@example.com');
  };
  const mailsToMia = async () => (await allToMia()).filter((m) => /^(Withdrawal|Deposit) of /.test(m.subject));
  await allow(mia, 'USDT', ETH_DESTINATION);
  const paid = await signed(mia, 'POST', '/api/v1/withdrawals', { asset: 'USDT', amount: '100', address: ETH_DESTINATION, request_id: 'mail-1' });
  assert.equal(paid.status, 201);
  const done = await until(() => signed(mia, 'GET', `/api/v1/withdrawals/${paid.body.id}`), (r) => r.body.state === 'completed', 'completion');
  assert.equal((await signed(mia, 'POST', '/api/v1/withdrawals', { asset: 'USDT', amount: '5000', address: ETH_DESTINATION, request_id: 'mail-2' })).body.error.code, 'INSUFFICIENT_BALANCE');
  let mails = await mailsToMia();
  assert.deepEqual(mails.map((m) => m.subject), ['Withdrawal of 100.000000 USDT requested at Bourse', 'Withdrawal of 100.000000 USDT sent from Bourse']);
  assert.match(mails[0]!.text, new RegExp(`fee 1\\.100000 USDT[\\s\\S]*to: {6}${ETH_DESTINATION}[\\s\\S]*DELETE /api/v1/withdrawals/${paid.body.id}`));
  assert.match(mails[1]!.text, new RegExp(`transaction: ${done.body.txid}`));
  const others = (await allToMia()).filter((m) => !/^(Withdrawal|Deposit) of /.test(m.subject));
  assert.deepEqual(others.map((m) => m.subject), ['New API key on your Bourse account', 'New USDT withdrawal address on your Bourse account'], 'the key and the address are news too');
  assert.match(others[1]!.text, new RegExp(`address: ${ETH_DESTINATION}\n  usable from: `));

  await venue.admin('/users/kyc', { email: 'mailed@example.com', kyc: 'OK', level: 2 });
  await allow(mia, 'BTC', BTC_DESTINATION);
  const big = await signed(mia, 'POST', '/api/v1/withdrawals', { asset: 'BTC', amount: '2.5', address: BTC_DESTINATION, request_id: 'mail-3' });
  assert.equal(big.body.state, 'review');
  await venue.admin(`/withdrawals/${big.body.id}/reject`, { operator: 'oscar', reason: 'unusual destination' });
  const { address } = (await signed(mia, 'GET', '/api/v1/deposit-address?asset=BTC')).body;
  await venue.admin('/chain/send', { asset: 'BTC', address, amount: '0.125' });
  await venue.admin('/chain/mine', { network: 'bitcoin', blocks: 2 });
  await until(() => balance(mia, 'BTC'), (b) => b?.available === '10.12500000', 'the credit');
  mails = (await mailsToMia()).slice(2);
  assert.deepEqual(mails.map((m) => m.subject), [
    'Withdrawal of 2.50000000 BTC requested at Bourse', 'Withdrawal of 2.50000000 BTC rejected at Bourse', 'Deposit of 0.12500000 BTC credited at Bourse',
  ]);
  assert.match(mails[0]!.text, /waits for review/);
  assert.match(mails[1]!.text, /rejected \(unusual destination\)\.\nThe amount and its fee are available/);

  // News of deposits can be turned off; a withdrawal asked for is a warning, and always comes.
  const session = (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'mailed@example.com', password: 'correct horse battery' } })).body.token as string;
  const headers = { authorization: `Bearer ${session}` };
  assert.deepEqual((await call(venue.url, 'GET', '/api/v1/auth/notifications', { headers })).body, { deposits: true, withdrawals: true });
  assert.deepEqual((await call(venue.url, 'PUT', '/api/v1/auth/notifications', { headers, body: { deposits: false, withdrawals: false } })).body, { deposits: false, withdrawals: false });
  assert.equal((await call(venue.url, 'PUT', '/api/v1/auth/notifications', { headers, body: { warnings: false } })).status, 400, 'warnings cannot be turned off');
  await venue.admin('/chain/send', { asset: 'BTC', address, amount: '0.125' });
  await venue.admin('/chain/mine', { network: 'bitcoin', blocks: 2 });
  await until(() => balance(mia, 'BTC'), (b) => b?.available === '10.25000000', 'the second credit');
  const quiet = await signed(mia, 'POST', '/api/v1/withdrawals', { asset: 'USDT', amount: '10', address: ETH_DESTINATION, request_id: 'mail-4' });
  await until(() => signed(mia, 'GET', `/api/v1/withdrawals/${quiet.body.id}`), (r) => r.body.state === 'completed', 'the quiet one');
  assert.deepEqual((await mailsToMia()).slice(5).map((m) => m.subject), ['Withdrawal of 10.000000 USDT requested at Bourse']);
});

test('a venue that needs KYC for money out refuses withdrawals and transfers to other users (403 KYC_REQUIRED, nothing locked) until the user is verified; deposits, trading and moves between their own accounts go on', async () => {
  let clock = Date.now();
  const kycVenue = await Venue.start({ clock: () => clock, funding: { ...DEMO_FUNDING, withdrawalsNeedKyc: true } });
  const send = (credentials: Credentials, method: string, path: string, body?: unknown) => {
    clock += 1;
    return call(kycVenue.url, method, path, { credentials, body, timestamp: clock });
  };
  try {
    const ursula = await kycVenue.trader('unverified@example.com', { USDT: '1000' }, ['read', 'trade', 'withdraw'], ['127.0.0.1']);
    await kycVenue.trader('friend@example.com', {});
    assert.equal((await send(ursula, 'POST', '/api/v1/withdrawal-addresses', { asset: 'USDT', address: ETH_DESTINATION, label: 'mine' })).status, 201, 'an address may be added meanwhile');
    clock += DAY + 1_000;
    const withdrawal = { asset: 'USDT', amount: '100', address: ETH_DESTINATION, request_id: 'kyc-1' };
    const refused = await send(ursula, 'POST', '/api/v1/withdrawals', withdrawal);
    assert.deepEqual([refused.status, refused.body.error.code], [403, 'KYC_REQUIRED']);
    assert.match(refused.body.error.message, /NOT_VERIFIED/);
    const toFriend = await send(ursula, 'POST', '/api/v1/transfers', { to_email: 'friend@example.com', asset: 'USDT', amount: '10', request_id: 'gift' });
    assert.deepEqual([toFriend.status, toFriend.body.error.code], [403, 'KYC_REQUIRED'], 'money to another user leaves as a withdrawal does');
    const sub = (await send(ursula, 'POST', '/api/v1/accounts', { label: 'savings' })).body.account as number;
    assert.equal((await send(ursula, 'POST', '/api/v1/transfers', { to_account: sub, asset: 'USDT', amount: '10', request_id: 'own' })).status, 201, 'between their own accounts');
    assert.equal((await send(ursula, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0010' })).status, 201, 'trading');
    const usdt = (await send(ursula, 'GET', '/api/v1/balances')).body.balances.find((b: { asset: string }) => b.asset === 'USDT');
    assert.deepEqual([usdt.available, usdt.locked], ['970.000000', '0.000000'], 'nothing locked for the refused ones');

    assert.equal((await kycVenue.admin('/users/kyc', { email: 'unverified@example.com', kyc: 'PENDING', level: 0 })).status, 200);
    assert.equal((await send(ursula, 'POST', '/api/v1/withdrawals', { ...withdrawal, request_id: 'kyc-2' })).body.error.code, 'KYC_REQUIRED', 'pending is not verified');
    assert.equal((await kycVenue.admin('/users/kyc', { email: 'unverified@example.com', kyc: 'OK', level: 1 })).status, 200);
    const accepted = await send(ursula, 'POST', '/api/v1/withdrawals', { ...withdrawal, request_id: 'kyc-3' });
    assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
    assert.equal((await send(ursula, 'POST', '/api/v1/transfers', { to_email: 'friend@example.com', asset: 'USDT', amount: '10', request_id: 'gift-2' })).status, 201);
  } finally {
    await kycVenue.stop();
  }
});
