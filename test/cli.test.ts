import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './support/server-process.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function startUntilStopped(dataDir: string): Promise<{ started: Record<string, unknown>; stopped: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'start', '--demo', '--port', '0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
        buffer = buffer.slice(newline + 1);
        if (line.event === undefined) continue; // a log line
        lines.push(line);
        if (lines.length === 1) child.kill('SIGTERM');
      }
    });
    child.on('exit', (code) => {
      if (code !== 0 || lines.length !== 2) reject(new Error(`exit ${code}, output ${JSON.stringify(lines)}`));
      else resolve({ started: lines[0]!, stopped: lines[1]! });
    });
  });
}

test('bourse start creates a private data folder, seeds the demo venue once, shuts down cleanly on SIGTERM, and verify agrees', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'bourse-cli-'));
  const dataDir = join(parent, 'data');
  try {
    const first = await startUntilStopped(dataDir);
    if (process.platform !== 'win32') assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'keys, hashes and the journal are for the operator only');
    assert.deepEqual(first.started.markets, ['BTC-USDT', 'ETH-USDT', 'ETH-BTC', 'BTC-EUR']);
    const second = await startUntilStopped(dataDir);
    assert.equal(second.started.lastSeq, first.stopped.lastSeq, 'nothing is lost or seeded twice across a restart');
    assert.deepEqual(second.started.markets, first.started.markets);
    const report = JSON.parse(execFileSync(process.execPath, [CLI, 'verify', '--data', dataDir]).toString()) as Record<string, unknown>;
    assert.equal(report.stateHash, second.stopped.stateHash, 'the journal replays to the state the server stopped with');
    assert.equal(report.snapshotAgrees, true);
    assert.deepEqual(report.violations, []);
    const rebuilt = JSON.parse(execFileSync(process.execPath, [CLI, 'rebuild', '--data', dataDir]).toString()) as Record<string, unknown>;
    assert.equal(rebuilt.lastSeq, second.stopped.lastSeq);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

/** `bourse start` on DATA/config.json; resolves with its `started` line. */
async function startWithConfig(dataDir: string): Promise<{ child: ReturnType<typeof spawn>; started: Record<string, unknown> }> {
  const child = spawn(process.execPath, [CLI, 'start', '--config', join(dataDir, 'config.json'), '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"started"'));
      if (line !== undefined) resolve(JSON.parse(line) as Record<string, unknown>);
    });
    child.on('exit', (code) => reject(new Error(`exit ${code}: ${out}`)));
  });
  return { child, started };
}

test('bourse start --config creates the configured assets, markets, fee tiers and fee levels and listens where it says; restarted with an edited config, it says where the config and the venue differ', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-config-'));
  try {
    const config = JSON.parse((await import('node:fs')).readFileSync(fileURLToPath(new URL('../../config.example.json', import.meta.url)), 'utf8')) as { server: { port: number } };
    config.server.port = 0;
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify(config));
    const { child, started } = await startWithConfig(dataDir);
    assert.deepEqual(started.markets, ['BTC-USDC']);
    assert.equal(started.registration, 'open');
    assert.equal(started.mail, join(dataDir, 'outbox'), 'without an SMTP server, mail is written to the outbox');
    const markets = (await (await fetch(`${started.url as string}/api/v1/markets`)).json()) as { markets: { market: string; tick_size: string; maker_fee: string; max_open_orders: number | null; band_low: string; band_high: string; collar: string }[] };
    assert.deepEqual(markets.markets.map((m) => [m.market, m.tick_size, m.maker_fee, m.max_open_orders, m.band_low, m.band_high, m.collar]), [['BTC-USDC', '0.010000', '0.0008', 500, '0.4', '2.5', '0.05']]);
    const fees = (await (await fetch(`${started.url as string}/api/v1/fees`)).json()) as unknown;
    assert.deepEqual(fees, {
      markets: [{ market: 'BTC-USDC', maker_fee: '0.0008', taker_fee: '0.0015', fee_tiers: [{ min_volume: '250000', maker_fee: '0.0006', taker_fee: '0.0012' }] }],
      levels: [{ level: 1, maker_fee: '0.0005', taker_fee: '0.001' }],
    }, 'the configured volume tiers and user levels are in force');
    assert.equal(started.configDrift, undefined, 'the venue is as configured');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    // An edited config changes nothing that exists; the start says where it differs and how to change it.
    const edited = config as unknown as { markets: Record<string, unknown>[]; feeLevels: Record<string, unknown>[]; assets: Record<string, unknown>[] };
    Object.assign(edited.markets[0]!, { makerFee: '0.0007', maxOpenOrders: 400 });
    edited.feeLevels[0]!.takerFee = '0.0009';
    edited.assets[0]!.precision = 6;
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify(config));
    const { child: again, started: restarted } = await startWithConfig(dataDir);
    again.kill('SIGTERM');
    await new Promise((r) => again.once('exit', r));
    assert.deepEqual(restarted.configDrift, [
      'BTC.precision: 6 in the config, 8 in the venue (a precision never changes)',
      'BTC-USDC.maxOpenOrders: 400 in the config, 500 in the venue (bourse admin market limit --market BTC-USDC)',
      'BTC-USDC.makerFee: 0.000700 in the config, 0.000800 in the venue (bourse admin fees set --market BTC-USDC)',
      'feeLevels level 1: maker 0.000500 / taker 0.000900 in the config, 0.000500 / 0.001000 in the venue (bourse admin fees level --level 1)',
    ]);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bourse admin drives a running server: users, their KYC, restrictions, disabling and support resets, keys listed and revoked, the audit trail, deposits, markets, fees and their tiers and levels, operator cancels, the simulated chain, withdrawals and bank deposits', async () => {
  const { startServer, CLI: cli } = await import('./support/server-process.js');
  const { depositReference } = await import('../src/funding/fiat.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-admin-'));
  const { child } = await startServer(dataDir);
  const admin = (...words: string[]): Record<string, any> =>
    JSON.parse(execFileSync(process.execPath, [cli, 'admin', ...words, '--data', dataDir]).toString()) as Record<string, any>;
  try {
    const user = admin('user', 'create', '--email', 'cli@example.com', '--password', 'correct horse battery');
    assert.equal(user.email, 'cli@example.com');
    assert.equal(admin('deposit', '--email', 'cli@example.com', '--asset', 'USDT', '--amount', '125.5', '--key', 'wire-77').available, '125.500000');
    assert.throws(() => admin('deposit', '--email', 'cli@example.com', '--asset', 'USDT', '--amount', '125.5', '--key', 'wire-77'),
      (error: { status: number; stdout: Buffer }) => error.status === 1 && JSON.parse(error.stdout.toString()).error.code === 'DUPLICATE_KEY',
      'a deposit retried with its key is not credited twice');
    assert.equal(admin('deposit', 'suspend', '--asset', 'USDT', '--operator', 'olga', '--reason', 'wallet migration').deposits, 'suspended');
    assert.equal(admin('deposit', 'resume', '--asset', 'USDT', '--operator', 'olga').deposits, 'enabled', 'deposit suspend and resume are not taken for a credit');
    const debit = admin('debit', '--email', 'cli@example.com', '--asset', 'USDT', '--amount', '25.5', '--reason', 'credited twice by hand', '--key', 'fix-1');
    assert.deepEqual([debit.available, debit.reason, debit.key], ['100.000000', 'credited twice by hand', 'admin-debit:fix-1']);
    const history = admin('user', 'ledger', '--email', 'cli@example.com', '--asset', 'USDT', '--after', '0');
    assert.deepEqual(history.entries.map((e: { kind: string; available_change: string }) => [e.kind, e.available_change]), [['deposit', '125.500000'], ['debit', '-25.500000']],
      'support reads the account as the user would, oldest first');
    assert.deepEqual(admin('user', 'orders', '--email', 'cli@example.com', '--status', 'all').orders, []);
    const statement = admin('user', 'export', '--email', 'cli@example.com', '--kind', 'ledger', '--asset', 'USDT', '--out', join(dataDir, 'statement.csv'));
    assert.equal(statement.rows, 2);
    assert.deepEqual(readFileSync(statement.file, 'utf8').split('\r\n').slice(1, 3).map((line) => line.split(',')[4]), ['deposit', 'debit'], 'the ledger as CSV, oldest first');
    const key = admin('apikey', 'create', '--email', 'cli@example.com', '--permissions', 'read,withdraw', '--ip', '127.0.0.1');
    assert.match(key.secret, /^[0-9a-f]{64}$/);
    assert.deepEqual(admin('user', 'kyc', '--email', 'cli@example.com', '--kyc', 'OK', '--level', '2'), { email: 'cli@example.com', kyc: 'OK', level: 2 });
    const mail = admin('mail', 'list', '--state', 'failed');
    assert.deepEqual([mail.destination, mail.counts.failed, mail.mails], [join(dataDir, 'outbox'), 0, []], 'the mail queue: nothing given up on');
    const notice = admin('notice', 'set', '--text', 'Maintenance at 14:00 UTC', '--hours', '2');
    assert.equal(notice.text, 'Maintenance at 14:00 UTC');
    assert.ok(notice.until - notice.since > 7_100_000 && notice.until - notice.since <= 7_200_000, 'for two hours');
    assert.deepEqual(admin('notice', 'clear'), { cleared: true });
    assert.deepEqual(admin('ban', 'list'), { bans: [] });
    assert.throws(() => admin('ban', 'lift', '--subject', 'ip:192.0.2.1'), (error: { status: number; stdout: Buffer }) => error.status === 1 && /NOT_BANNED/.test(error.stdout.toString()));
    const everywhere = admin('market', 'cancel-only', '--all');
    assert.ok(everywhere.markets.length >= 4 && everywhere.markets.every((m: { state: string }) => m.state === 'cancel_only'), 'every market at once');
    const status = await (await fetch(`${JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')).url}/api/v1/status`)).json() as { markets: Record<string, string[]> };
    assert.deepEqual([status.markets.trading, status.markets.cancel_only!.length], [[], everywhere.markets.length], 'traders see every market cancel-only');
    assert.ok(admin('market', 'resume', '--all').markets.every((m: { state: string }) => m.state === 'trading'));
    const report = admin('liabilities', 'publish');
    assert.match(report.root_hash, /^[0-9a-f]{64}$/);
    assert.ok(report.users >= 2 && /^[0-9]+\.[0-9]{6}$/.test(report.totals.USDT), 'this user and the demo market maker, and what they are owed');
    const testMail = admin('mail', 'test', '--to', 'ops@example.com');
    assert.equal(testMail.sent, true);
    assert.ok(existsSync(join(dataDir, 'outbox', testMail.answer)), 'without SMTP the test mail is an outbox file');
    const listed = admin('apikey', 'list', '--email', 'cli@example.com').keys as { key: string; permissions: string[]; ip: string[]; revoked_at: number | null }[];
    assert.deepEqual(listed.map((k) => [k.key, k.permissions, k.ip, k.revoked_at]), [[key.key, ['read', 'withdraw'], ['127.0.0.1'], null]]);
    assert.ok(!JSON.stringify(listed).includes(key.secret), 'a listing never shows the secret');
    const { publicKey } = (await import('node:crypto')).generateKeyPairSync('ed25519');
    writeFileSync(join(dataDir, 'user.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const ed = admin('apikey', 'create', '--email', 'cli@example.com', '--permissions', 'read', '--public-key-file', join(dataDir, 'user.pem'));
    assert.deepEqual([ed.scheme, ed.secret, ed.permissions], ['ed25519', undefined, ['read']], 'an Ed25519 key from the user\'s public key: no secret is made');
    assert.throws(() => admin('apikey', 'create', '--email', 'cli@example.com', '--permissions', 'read', '--public-key-file', join(dataDir, 'missing.pem')),
      (error: { status: number; stderr: Buffer }) => error.status === 1 && error.stderr.toString().includes('cannot read'));
    assert.deepEqual(admin('apikey', 'revoke', '--email', 'cli@example.com', '--key', ed.key), { key: ed.key, revoked: true });
    assert.deepEqual(admin('apikey', 'revoke', '--email', 'cli@example.com', '--key', key.key), { key: key.key, revoked: true });
    assert.notEqual(admin('apikey', 'list', '--email', 'cli@example.com').keys[0].revoked_at, null);
    assert.throws(() => admin('apikey', 'revoke', '--email', 'cli@example.com', '--key', key.key),
      (error: { status: number; stdout: Buffer }) => error.status === 1 && JSON.parse(error.stdout.toString()).error.code === 'UNKNOWN_KEY',
      'a revoked key cannot be revoked again, and the CLI exits 1 with the server\'s answer');
    assert.deepEqual(admin('asset', 'create', '--code', 'SOL', '--precision', '9', '--min-fee', '0.0001'), { code: 'SOL', precision: 9, min_fee: '0.000100000' });
    const sol = admin('market', 'create', '--base', 'SOL', '--quote', 'USDT', '--tick', '0.001', '--lot', '0.001', '--min-quantity', '0.01', '--max-quantity', '1000',
      '--min-notional', '5', '--max-notional', '100000', '--maker', '0.0005', '--taker', '0.001', '--band-low', '0.5', '--band-high', '2');
    assert.deepEqual(
      [sol.tick_size, sol.min_quantity, sol.max_quantity, sol.min_notional, sol.max_notional, sol.maker_fee, sol.taker_fee, sol.band_low, sol.band_high],
      ['0.001000', '0.010000000', '1000.000000000', '5.000000', '100000.000000', '0.0005', '0.001', '0.5', '2'],
      'every market rule a config file can set, the CLI can too');
    assert.equal(admin('market', 'limit', '--market', 'SOL-USDT', '--max-open-orders', '50').max_open_orders, 50);
    assert.equal(admin('market', 'limit', '--market', 'SOL-USDT', '--collar', '0.03').collar, '0.03', 'market orders in SOL-USDT trade within 3 % of the last price');
    const limited = admin('market', 'limit', '--market', 'SOL-USDT', '--band-low', '0.6', '--min-notional', '10');
    assert.deepEqual([limited.band_low, limited.band_high, limited.min_notional, limited.max_quantity, limited.max_open_orders], ['0.6', '2', '10.000000', '1000.000000000', 50],
      'the limits given change; the others stay');
    assert.throws(() => admin('market', 'limit', '--market', 'SOL-USDT', '--band-low', '1.5', '--max-open-orders', '7'),
      (error: { status: number; stdout: Buffer }) => error.status === 1 && JSON.parse(error.stdout.toString()).error.code === 'INVALID_COMMAND');
    const unchanged = admin('market', 'limit', '--market', 'SOL-USDT', '--min-quantity', '0.01');
    assert.deepEqual([unchanged.band_low, unchanged.max_open_orders], ['0.6', 50], 'a refused band changed nothing, the open-order limit included');
    assert.throws(() => admin('market', 'limit', '--market', 'SOL-USDT'), (error: { status: number }) => error.status === 1, 'nothing to change');
    const solBtc = admin('market', 'create', '--base', 'SOL', '--quote', 'BTC', '--tick', '0.00001', '--lot', '0.001', '--max-open-orders', '0');
    assert.deepEqual([solBtc.max_open_orders, solBtc.band_low, solBtc.band_high], [null, null, null]);
    assert.equal(admin('market', 'halt', '--market', 'SOL-USDT').state, 'halted');
    assert.equal(admin('fees', 'set', '--market', 'SOL-USDT', '--maker', '0.001', '--taker', '0.002').taker_fee, '0.002');
    const tiered = admin('fees', 'set', '--market', 'SOL-USDT', '--maker', '0.001', '--taker', '0.002', '--tiers', '5000:0.0008:0.0015,50000:0.0005:0.001');
    assert.deepEqual(tiered.fee_tiers, [{ min_volume: '5000', maker_fee: '0.0008', taker_fee: '0.0015' }, { min_volume: '50000', maker_fee: '0.0005', taker_fee: '0.001' }]);
    assert.equal(admin('fees', 'set', '--market', 'SOL-USDT', '--maker', '0.0009', '--taker', '0.002').fee_tiers.length, 2, 'new base rates keep the tiers');
    assert.deepEqual(admin('fees', 'set', '--market', 'SOL-USDT', '--maker', '0.0009', '--taker', '0.002', '--tiers', 'none').fee_tiers, []);
    assert.deepEqual(admin('fees', 'level', '--level', '7', '--maker', '0', '--taker', '0.0005').levels.at(-1), { level: 7, maker_fee: '0', taker_fee: '0.0005' });
    const restricted = admin('account', 'restrict', '--email', 'cli@example.com', '--restriction', 'sell_only', '--cancel-orders');
    assert.deepEqual(restricted, { email: 'cli@example.com', account: user.account, restriction: 'sell_only', cancelled: 0 });
    assert.deepEqual(admin('orders', 'cancel', '--email', 'cli@example.com', '--market', 'BTC-USDT'), { email: 'cli@example.com', account: user.account, market: 'BTC-USDT', cancelled: 0 });
    assert.deepEqual(admin('market', 'cancel-orders', '--market', 'SOL-USDT'), { market: 'SOL-USDT', cancelled: 0 });
    const shown = admin('user', 'show', '--email', 'cli@example.com');
    assert.deepEqual([shown.kyc, shown.level, shown.api_keys, shown.accounts[0].restriction, shown.accounts[0].open_orders], ['OK', 2, 0, 'sell_only', 0]);
    assert.deepEqual(shown.accounts[0].balances, [{ asset: 'USDT', available: '100.000000', reserved: '0.000000', locked: '0.000000' }]);
    assert.deepEqual(admin('user', 'disable', '--email', 'cli@example.com'), { email: 'cli@example.com', disabled: true, changed: true, withdrawals_cancelled: [] });
    assert.equal(typeof admin('user', 'show', '--email', 'cli@example.com').disabled_at, 'number');
    assert.deepEqual(admin('user', 'list', '--disabled').users.map((u: { email: string }) => u.email), ['cli@example.com']);
    assert.deepEqual(admin('user', 'list', '--kyc', 'OK', '--limit', '5').users.map((u: { email: string }) => u.email), ['cli@example.com']);
    assert.deepEqual(admin('user', 'enable', '--email', 'cli@example.com'), { email: 'cli@example.com', disabled: false, changed: true, withdrawals_cancelled: [] });
    assert.deepEqual(admin('user', 'password', '--email', 'cli@example.com', '--password', 'set by support'), { email: 'cli@example.com', password_changed: true, sessions_ended: 0 });
    assert.deepEqual(admin('user', 'reset-2fa', '--email', 'cli@example.com'), { email: 'cli@example.com', two_factor: false, was_on: false, sessions_ended: 0 });
    const sent = admin('chain', 'send', '--address', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', '--asset', 'BTC', '--amount', '0.1');
    assert.match(sent.txid, /^[0-9a-f]{64}$/);
    assert.equal(admin('chain', 'mine', '--network', 'bitcoin', '--blocks', '3').height, 3);
    assert.equal(admin('chain', 'reorg', '--network', 'bitcoin', '--depth', '1').height, 2);
    const credited = admin('fiat', 'deposit', '--reference', depositReference(user.id), '--asset', 'EUR', '--amount', '40', '--bank-reference', 'SEPA-9', '--operator', 'olivia');
    assert.deepEqual([credited.email, credited.credited], ['cli@example.com', true]);
    assert.deepEqual(admin('withdrawal', 'list').withdrawals, []);
    assert.deepEqual(admin('withdrawal', 'audit', '--id', '1').audit, []);
    assert.deepEqual(admin('withdrawal', 'list', '--operator', 'olga').withdrawals, []);
    assert.throws(() => admin('fees', 'collect', '--email', 'cli@example.com', '--asset', 'USDT', '--amount', '1000000'),
      (error: { status: number; stdout: Buffer }) => error.status === 1 && JSON.parse(error.stdout.toString()).error.code === 'INSUFFICIENT_BALANCE',
      'no more than the fee account holds');
    const ledger = admin('ledger').assets as { asset: string; balanced: boolean; fees: string }[];
    assert.ok(ledger.length > 0 && ledger.every((a) => a.balanced), JSON.stringify(ledger));
    const trail = admin('audit', '--limit', '4').actions as { operator: string; path: string }[];
    assert.deepEqual(trail.map((a) => [a.operator, a.path]), [
      [process.env.USER ?? process.env.LOGNAME ?? 'cli', '/admin/v1/ledger'],
      [process.env.USER ?? process.env.LOGNAME ?? 'cli', '/admin/v1/fees/collect'],
      ['olga', '/admin/v1/withdrawals'],
      [process.env.USER ?? process.env.LOGNAME ?? 'cli', '/admin/v1/withdrawals/:id/audit'],
    ], 'the CLI names the operator: --operator, else the login name');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bourse start refuses a config file with an unknown setting or a value of the wrong type, naming each problem, and starts nothing', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-bad-config-'));
  try {
    const path = join(dataDir, 'bourse.json');
    writeFileSync(path, JSON.stringify({
      server: { prot: 9000, trustProxy: '10.0.0.1', keyWeightPerSecond: '100' },
      auth: { lockoutMs: 1.5 },
      servr: {},
      markets: [{ base: 'BTC', quote: 'USDT', tick: '0.01' }],
      funding: { assets: [{ asset: 'BTC', network: 'bitcoim' }] },
    }));
    const run = await runCli(['start', '--config', path, '--port', '0', '--data', dataDir]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '', 'nothing started');
    const message = (JSON.parse(run.stderr) as { error: string }).error;
    for (const problem of [
      'server: unknown setting "prot"', 'server.trustProxy: must be array', 'server.keyWeightPerSecond: must be integer',
      'auth.lockoutMs: must be integer', 'the file: unknown setting "servr"', 'markets.0: missing "lot"',
      'funding.assets.0.network: must be one of bitcoin, ethereum, ripple, stellar, nem',
    ]) assert.ok(message.includes(problem), `${problem} in ${message}`);
    assert.ok(message.startsWith(`config ${path}: `));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bourse start logs every admin request (refused ones as warnings) with what, from where and how it ended, never the body', async () => {
  const { startServer, admin } = await import('./support/server-process.js');
  const { call } = await import('./support/api-client.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-admin-log-'));
  const { child, url } = await startServer(dataDir, []);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  try {
    const password = 'a password that must not be logged';
    await admin(url, dataDir, '/users', { email: 'logged@example.com', password });
    const refused = await call(url, 'POST', '/admin/v1/users', { body: { email: 'intruder@example.com', password }, headers: { authorization: 'Bearer guess' } });
    assert.equal(refused.status, 401);
    type Line = { level: number; msg: string; method?: string; path?: string; ip?: string; status?: number };
    const adminLines = (): Line[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line).filter((l) => l.msg?.startsWith('admin request'));
    const deadline = Date.now() + 5_000;
    while (adminLines().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const [done, denied] = adminLines();
    assert.deepEqual([done?.level, done?.msg, done?.method, done?.path, done?.ip, done?.status], [30, 'admin request', 'POST', '/admin/v1/users', '127.0.0.1', 201]);
    assert.deepEqual([denied?.level, denied?.msg, denied?.status], [40, 'admin request refused', 401]);
    assert.ok(!out.includes(password), 'no body in the log');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bourse start on a data folder it cannot make says so at once (a recursive mkdir under /proc spun for ever)', { skip: existsSync('/proc/self') ? false : 'needs /proc' }, async () => {
  const started = Date.now();
  const run = await runCli(['start', '--data', '/proc/bourse-data', '--port', '0']);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /ENOENT.*\/proc\/bourse-data/);
  assert.ok(Date.now() - started < 10_000);
});

test('bourse verify and rebuild on a folder without a journal (a mistyped --data) refuse, naming it, and create nothing there', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-no-journal-'));
  try {
    for (const command of ['verify', 'rebuild']) {
      const run = await runCli([command, '--data', dataDir]);
      assert.equal(run.code, 1, `${command}: ${run.stdout}`);
      assert.match(run.stderr, /no journal in .*give the --data folder/);
      assert.deepEqual(readdirSync(dataDir), [], `${command} left nothing behind`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
