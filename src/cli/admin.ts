/**
 * `bourse admin …`: calls the admin API of a running server, found through DATA/server.json
 * (or --url), with the token in DATA/admin.token. Prints the server's JSON answer.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface AdminOptions {
  dataDir: string;
  url?: string;
  [flag: string]: string | boolean | undefined;
}

function need(options: AdminOptions, flag: string): string {
  const value = options[flag];
  if (typeof value !== 'string' || value === '') throw new Error(`--${flag} is required`);
  return value;
}

/** `market create`'s optional flags and the admin API's fields they fill. */
const MARKET_FLAGS = [
  ['min-quantity', 'min_quantity'], ['max-quantity', 'max_quantity'], ['min-notional', 'min_notional'], ['max-notional', 'max_notional'],
  ['maker', 'maker_fee'], ['taker', 'taker_fee'], ['band-low', 'band_low'], ['band-high', 'band_high'], ['collar', 'collar'],
] as const;

const STATES: Record<string, string> = { halt: 'halted', resume: 'trading', 'cancel-only': 'cancel_only', 'post-only': 'post_only' };

function readPublicKey(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`--public-key-file: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** `--account N`, when given, as the body field. */
function accountFlag(options: AdminOptions): { account?: number } {
  return typeof options.account === 'string' ? { account: Number(options.account) } : {};
}

/** `--tiers VOLUME:MAKER:TAKER,…` (or `none`) as the fee route's tiers. */
function tiersFlag(text: string): { min_volume: string; maker: string; taker: string }[] {
  if (text === 'none') return [];
  return text.split(',').map((tier) => {
    const parts = tier.split(':');
    if (parts.length !== 3 || parts.some((p) => p === '')) throw new Error(`--tiers: "${tier}" is not VOLUME:MAKER:TAKER`);
    return { min_volume: parts[0]!, maker: parts[1]!, taker: parts[2]! };
  });
}

/** A GET path with the given flags (those set) as its query, after any fixed `params`. */
function withQuery(path: string, options: AdminOptions, flags: readonly string[], params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params);
  for (const flag of flags) if (typeof options[flag] === 'string') query.set(flag, options[flag]);
  return query.size > 0 ? `${path}?${query}` : path;
}

/** Where `bourse start` said it serves, in the data folder it runs on. */
function serverUrl(dataDir: string): string {
  const file = join(dataDir, 'server.json');
  if (!existsSync(file)) throw new Error(`no server is running on ${dataDir} (no server.json): start one with bourse start --data ${dataDir}, or pass --url`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url;
}

export async function runAdmin(words: string[], options: AdminOptions): Promise<unknown> {
  const [noun, verb] = words;
  let path: string;
  let body: Record<string, unknown> | undefined;
  let method = 'POST';
  if (noun === 'user' && verb === 'create') {
    path = '/users';
    body = { email: need(options, 'email'), password: need(options, 'password') };
  } else if (noun === 'user' && verb === 'list') {
    method = 'GET';
    path = withQuery('/users', options, ['kyc', 'limit', 'before'], options.disabled === true ? { disabled: 'true' } : {});
  } else if (noun === 'user' && (verb === 'orders' || verb === 'trades' || verb === 'ledger')) {
    method = 'GET';
    path = withQuery(`/accounts/${verb}`, options, ['account', 'market', 'asset', 'status', 'from', 'to', 'after', 'before', 'limit'], { email: need(options, 'email') });
  } else if (noun === 'user' && verb === 'export') {
    method = 'GET';
    need(options, 'out');
    path = withQuery(`/accounts/exports/${encodeURIComponent(need(options, 'kind'))}`, options, ['account', 'market', 'asset', 'from', 'to'], { email: need(options, 'email') });
  } else if (noun === 'user' && verb === 'activity') {
    method = 'GET';
    path = withQuery('/users/activity', options, ['limit'], { email: need(options, 'email') });
  } else if (noun === 'user' && verb === 'logins') {
    method = 'GET';
    path = withQuery('/users/logins', options, ['limit'], { email: need(options, 'email') });
  } else if (noun === 'signup' && verb === 'list') {
    method = 'GET';
    path = withQuery('/signups', options, ['email', 'limit']);
  } else if (noun === 'signup' && verb === 'confirm') {
    path = '/signups/confirm';
    body = { email: need(options, 'email') };
  } else if (noun === 'user' && verb === 'show') {
    method = 'GET';
    path = `/users?email=${encodeURIComponent(need(options, 'email'))}`;
  } else if (noun === 'user' && verb === 'password') {
    path = '/users/password';
    body = { email: need(options, 'email'), password: need(options, 'password') };
  } else if (noun === 'user' && verb === 'email') {
    path = '/users/email';
    body = { email: need(options, 'email'), new_email: need(options, 'new-email') };
  } else if (noun === 'user' && verb === 'reset-2fa') {
    path = '/users/reset-2fa';
    body = { email: need(options, 'email') };
  } else if (noun === 'user' && (verb === 'disable' || verb === 'enable')) {
    path = `/users/${verb}`;
    body = { email: need(options, 'email') };
  } else if (noun === 'account' && verb === 'restrict') {
    path = '/accounts/restriction';
    body = { email: need(options, 'email'), restriction: need(options, 'restriction'), ...accountFlag(options), ...(options['cancel-orders'] === true ? { cancel_orders: true } : {}) };
  } else if (noun === 'orders' && verb === 'cancel') {
    path = '/accounts/cancel-orders';
    body = { email: need(options, 'email'), ...accountFlag(options), ...(typeof options.market === 'string' ? { market: options.market } : {}) };
  } else if (noun === 'market' && verb === 'cancel-orders') {
    path = `/markets/${encodeURIComponent(need(options, 'market'))}/cancel-orders`;
  } else if (noun === 'fees' && verb === 'collect') {
    path = '/fees/collect';
    body = { email: need(options, 'email'), asset: need(options, 'asset'), amount: need(options, 'amount'), ...(typeof options.key === 'string' ? { key: options.key } : {}) };
  } else if (noun === 'fees' && verb === 'level') {
    path = '/fee-levels';
    body = { level: Number(need(options, 'level')), maker: need(options, 'maker'), taker: need(options, 'taker') };
  } else if (noun === 'user' && verb === 'kyc') {
    path = '/users/kyc';
    body = { email: need(options, 'email'), kyc: need(options, 'kyc'), level: Number(need(options, 'level')) };
  } else if (noun === 'apikey' && verb === 'list') {
    method = 'GET';
    path = `/apikeys?email=${encodeURIComponent(need(options, 'email'))}`;
  } else if (noun === 'apikey' && verb === 'edit') {
    method = 'PATCH';
    path = `/apikeys/${encodeURIComponent(need(options, 'key'))}?email=${encodeURIComponent(need(options, 'email'))}`;
    body = {};
    if (typeof options.ip === 'string') body.ip = options.ip.split(',').filter((x) => x !== '');
    if (typeof options.label === 'string') body.label = options.label;
  } else if (noun === 'apikey' && verb === 'revoke') {
    method = 'DELETE';
    path = `/apikeys/${encodeURIComponent(need(options, 'key'))}?email=${encodeURIComponent(need(options, 'email'))}`;
  } else if (noun === 'apikey' && verb === 'create') {
    path = '/apikeys';
    const ip = typeof options.ip === 'string' ? options.ip.split(',').filter((x) => x !== '') : [];
    body = { email: need(options, 'email'), permissions: need(options, 'permissions').split(','), ip, ...(typeof options.account === 'string' ? { account: Number(options.account) } : {}) };
    // An Ed25519 key: the user's public key (PEM); the private key never leaves them.
    if (typeof options['public-key-file'] === 'string') body.public_key = readPublicKey(options['public-key-file']);
    if (typeof options.label === 'string') body.label = options.label;
    if (typeof options['expires-days'] === 'string') body.expires_at = Date.now() + Number(options['expires-days']) * 86_400_000;
  } else if (noun === 'deposit' && verb === undefined) {
    path = '/deposits';
    body = { email: need(options, 'email'), asset: need(options, 'asset'), amount: need(options, 'amount'), ...(typeof options.key === 'string' ? { key: options.key } : {}) };
  } else if (noun === 'debit') {
    path = '/debits';
    body = { email: need(options, 'email'), asset: need(options, 'asset'), amount: need(options, 'amount'), reason: need(options, 'reason') };
    if (typeof options.account === 'string') body.account = Number(options.account);
    if (typeof options.key === 'string') body.key = options.key;
  } else if (noun === 'asset' && verb === 'create') {
    path = '/assets';
    body = { code: need(options, 'code'), precision: Number(need(options, 'precision')) };
    if (typeof options['min-fee'] === 'string') body.min_fee = options['min-fee'];
  } else if (noun === 'market' && verb === 'create') {
    path = '/markets';
    body = { base: need(options, 'base'), quote: need(options, 'quote'), tick: need(options, 'tick'), lot: need(options, 'lot') };
    for (const [flag, field] of MARKET_FLAGS) if (typeof options[flag] === 'string') body[field] = options[flag];
    if (typeof options['max-open-orders'] === 'string') body.max_open_orders = Number(options['max-open-orders']);
  } else if (noun === 'market' && verb === 'limit') {
    path = `/markets/${encodeURIComponent(need(options, 'market'))}/limits`;
    body = {};
    for (const [flag, field] of MARKET_FLAGS) if (typeof options[flag] === 'string' && !field.endsWith('_fee')) body[field] = options[flag];
    if (typeof options['max-open-orders'] === 'string') body.max_open_orders = Number(options['max-open-orders']);
    if (Object.keys(body).length === 0) throw new Error('market limit: give --max-open-orders, --min-quantity, --max-quantity, --min-notional, --max-notional, --band-low, --band-high or --collar');
  } else if (noun === 'market' && verb !== undefined && Object.hasOwn(STATES, verb)) {
    path = options.all === true ? '/markets/state' : `/markets/${encodeURIComponent(need(options, 'market'))}/state`;
    body = { state: STATES[verb] };
  } else if (noun === 'fees' && verb === 'set') {
    path = `/markets/${encodeURIComponent(need(options, 'market'))}/fees`;
    body = { maker: need(options, 'maker'), taker: need(options, 'taker') };
    if (typeof options.tiers === 'string') body.tiers = tiersFlag(options.tiers);
  } else if (noun === 'chain' && verb === 'send') {
    path = '/chain/send';
    body = { address: need(options, 'address'), asset: need(options, 'asset'), amount: need(options, 'amount'), ...(typeof options.tag === 'string' ? { tag: options.tag } : {}) };
  } else if (noun === 'chain' && verb === 'mine') {
    path = '/chain/mine';
    body = { network: need(options, 'network'), blocks: Number(options.blocks ?? 1) };
  } else if (noun === 'chain' && verb === 'reorg') {
    path = '/chain/reorg';
    body = { network: need(options, 'network'), depth: Number(need(options, 'depth')) };
  } else if (noun === 'chain' && (verb === 'pause' || verb === 'resume')) {
    path = `/chain/${verb}`;
    body = { network: need(options, 'network') };
  } else if (noun === 'withdrawal' && (verb === 'approve' || verb === 'reject' || verb === 'fail')) {
    path = `/withdrawals/${encodeURIComponent(need(options, 'id'))}/${verb}`;
    body = { operator: need(options, 'operator'), ...(verb === 'approve' ? {} : { reason: need(options, 'reason') }) };
  } else if ((noun === 'withdrawal' || noun === 'deposit') && (verb === 'suspend' || verb === 'resume')) {
    path = `/${noun}s/${verb}`;
    body = { asset: need(options, 'asset'), operator: need(options, 'operator'), ...(verb === 'suspend' ? { reason: need(options, 'reason') } : {}) };
  } else if (noun === 'withdrawal' && verb === 'audit') {
    method = 'GET';
    path = `/withdrawals/${encodeURIComponent(need(options, 'id'))}/audit`;
  } else if (noun === 'withdrawal' && verb === 'list') {
    method = 'GET';
    path = withQuery('/withdrawals', options, ['state', 'asset', 'email', 'from', 'to', 'after', 'before', 'limit']);
  } else if (noun === 'ip' && verb === 'block') {
    path = '/blocks';
    body = { cidr: need(options, 'cidr'), reason: need(options, 'reason'), ...(typeof options.minutes === 'string' ? { minutes: Number(options.minutes) } : {}) };
  } else if (noun === 'ip' && verb === 'unblock') {
    method = 'DELETE';
    path = `/blocks?cidr=${encodeURIComponent(need(options, 'cidr'))}`;
  } else if (noun === 'ip' && verb === 'list') {
    method = 'GET';
    path = '/blocks';
  } else if (noun === 'ban' && verb === 'list') {
    method = 'GET';
    path = '/rate-bans';
  } else if (noun === 'ban' && verb === 'lift') {
    method = 'DELETE';
    path = `/rate-bans?subject=${encodeURIComponent(need(options, 'subject'))}`;
  } else if (noun === 'notice' && verb === 'set') {
    path = '/notice';
    body = { text: need(options, 'text'), ...(typeof options.hours === 'string' ? { until: Date.now() + Number(options.hours) * 3_600_000 } : {}) };
  } else if (noun === 'notice' && verb === 'clear') {
    method = 'DELETE';
    path = '/notice';
  } else if (noun === 'mail' && verb === 'list') {
    method = 'GET';
    path = withQuery('/mail', options, ['state', 'email', 'limit']);
  } else if (noun === 'mail' && verb === 'test') {
    path = '/mail/test';
    body = { to: need(options, 'to') };
  } else if (noun === 'mail' && (verb === 'retry' || verb === 'drop')) {
    path = `/mail/${verb}`;
    body = { id: Number(need(options, 'id')) };
  } else if (noun === 'ledger') {
    method = 'GET';
    path = '/ledger';
  } else if (noun === 'audit') {
    method = 'GET';
    path = withQuery('/audit', options, ['limit', 'before']);
  } else if (noun === 'liabilities' && verb === 'publish') {
    path = '/liabilities';
    body = {};
  } else if (noun === 'backup') {
    path = '/backups';
    body = typeof options.name === 'string' ? { name: options.name } : {};
  } else if (noun === 'fiat' && verb === 'deposit') {
    path = '/fiat/deposits';
    body = { reference: need(options, 'reference'), asset: need(options, 'asset'), amount: need(options, 'amount'), bank_reference: need(options, 'bank-reference'), operator: need(options, 'operator') };
  } else {
    throw new Error(words.length === 0 ? 'which admin command? bourse help lists them' : `unknown admin command: ${words.join(' ')} (bourse help lists them)`);
  }
  const base = options.url ?? serverUrl(options.dataDir);
  const tokenFile = join(options.dataDir, 'admin.token');
  if (!existsSync(tokenFile)) throw new Error(`no admin token in ${options.dataDir}: give the --data folder the server was started with`);
  const token = readFileSync(tokenFile, 'utf8').trim();
  // Who is acting, for the audit trail: --operator, else the login name.
  const operator = typeof options.operator === 'string' ? options.operator : process.env.USER ?? process.env.LOGNAME ?? 'cli';
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'x-bourse-operator': operator };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${base}/admin/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`no answer from the server at ${base}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
  if (response.ok && typeof options.out === 'string' && (response.headers.get('content-type') ?? '').startsWith('text/csv')) {
    // A file, not a JSON object: it goes where --out says, and the command prints what it wrote.
    const text = await response.text();
    writeFileSync(options.out, text, { mode: 0o600 });
    return { file: resolve(options.out), bytes: Buffer.byteLength(text), rows: Math.max(0, text.split('\r\n').length - 2) };
  }
  const answer = (await response.json()) as unknown;
  if (!response.ok) {
    process.exitCode = 1;
  }
  return answer;
}
