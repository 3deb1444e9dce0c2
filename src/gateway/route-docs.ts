/**
 * What the docs page (/docs, from /openapi.json) says about each route: a group and one line. How
 * a route is authenticated is not written here: signed and session routes are known by the hook
 * they carry, so that the document cannot claim a check the route does not make; admin routes by
 * their prefix, under which one hook of the admin scope checks the token for every route.
 */
import type { RouteOptions } from 'fastify';
import type { Permission } from '../identity/store.js';

const MARKET_DATA = 'market data';
const TRADING = 'trading';
const ACCOUNT = 'account';
const FUNDING = 'funding';
const SESSION = 'session';
const ADMIN = 'admin';
const ADMIN_FUNDING = 'admin: funding';

/** By "METHOD /path" as the route is registered (Fastify's `:param` form). */
const ROUTE_DOCS: Record<string, [tag: string, summary: string]> = {
  'GET /health': ['operations', 'Whether the sequencer and the read model are running, and the last sequence number'],
  'GET /api/v1/time': [MARKET_DATA, 'Server time in milliseconds since the epoch'],
  'GET /api/v1/status': [MARKET_DATA, "The venue's status before acting: online or halted, each market's state, the assets whose deposits or withdrawals are suspended and why, and the operator's notice"],
  'GET /api/v1/assets': [MARKET_DATA, 'Assets and their precisions'],
  'GET /api/v1/markets': [MARKET_DATA, 'Markets with tick, lot, limits, fees and state'],
  'GET /api/v1/fees': [MARKET_DATA, "The fee schedule: each market's maker and taker rates with its volume tiers, and the rates by user level"],
  'GET /api/v1/markets/:market/depth': [MARKET_DATA, 'Order book levels, with the sequence number they are as of'],
  'GET /api/v1/markets/:market/book': [MARKET_DATA, 'The book order by order: each resting order\'s id, price and quantity, in queue order (whose it is never shown)'],
  'GET /api/v1/liabilities': [MARKET_DATA, 'Published proof-of-liabilities reports: what the exchange owes its users in each asset, and the Merkle root that commits to every user\'s share'],
  'GET /api/v1/markets/:market/trades': [MARKET_DATA, 'Recent trades, newest first, paginated; oldest first after an id; by time range'],
  'GET /api/v1/tickers': [MARKET_DATA, '24-hour tickers of every market'],
  'GET /api/v1/markets/:market/ticker': [MARKET_DATA, "A market's 24-hour ticker"],
  'GET /api/v1/markets/:market/candles': [MARKET_DATA, 'Candles (1m to 1w)'],
  'GET /api/v1/account': [ACCOUNT, "Who the key belongs to: user, account, KYC status, level, the key's permissions and any operator restriction"],
  'GET /api/v1/account/rate-limits': [ACCOUNT, "What the key and its address may still spend of their request-weight budgets this second, how many new orders the user may still place, and every route's weight"],
  'GET /api/v1/account/fees': [ACCOUNT, 'What the account pays now in each market, as maker and taker, and the 30-day volume its fee tiers count'],
  'GET /api/v1/accounts': [ACCOUNT, "The user's main account and sub-accounts"],
  'POST /api/v1/accounts': [ACCOUNT, 'Open a sub-account'],
  'GET /api/v1/balances': [ACCOUNT, 'Available, reserved and locked balance per asset'],
  'GET /api/v1/ledger': [ACCOUNT, 'Every balance change with the balance after it, newest first (oldest first after an id; by time range)'],
  'GET /api/v1/exports/:kind': [ACCOUNT, "The account's fills, ledger or order history as a CSV file, oldest first"],
  'GET /api/v1/account/liabilities': [ACCOUNT, "The user's leaf in a proof-of-liabilities report and its path to the published root, to check"],
  'GET /api/v1/trades': [ACCOUNT, "The account's fills, newest first (oldest first after an id; by time range)"],
  'POST /api/v1/orders': [TRADING, 'Place an order: limit, market, stop, take-profit (market or limit) or trailing stop; GTC, IOC, FOK, DAY or GTD; post-only'],
  'GET /api/v1/orders': [TRADING, "The account's orders, newest first; by status, market or client order id; history oldest first after an id, or by time range"],
  'POST /api/v1/orders/batch': [TRADING, 'Place up to 20 orders in one request: each is placed or refused on its own, and the answer gives each outcome in the order sent'],
  'POST /api/v1/orders/cancel-batch': [TRADING, 'Cancel up to 20 open orders by id, or by client order id within one account; each outcome in the order sent'],
  'DELETE /api/v1/orders': [TRADING, 'Cancel every open order, or those of one market'],
  'POST /api/v1/orders/cancel-after': [TRADING, "Dead man's switch: unless set again within timeout_ms (up to a day), every open order of the account is cancelled; 0 turns it off"],
  'GET /api/v1/orders/cancel-after': [TRADING, "When the account's dead man's switch fires (null: off)"],
  'GET /api/v1/orders/:id': [TRADING, 'One order with its fills'],
  'PATCH /api/v1/orders/:id': [TRADING, 'Amend a resting limit order (a smaller quantity at the same price keeps its place in the queue)'],
  'DELETE /api/v1/orders/:id': [TRADING, 'Cancel an open order'],
  'PATCH /api/v1/orders/client/:client_order_id': [TRADING, 'Amend an open order found by its client order id (in the key\'s account, or ?account=N)'],
  'DELETE /api/v1/orders/client/:client_order_id': [TRADING, 'Cancel an open order by its client order id (in the key\'s account, or ?account=N): for a placement that got no answer'],
  'GET /api/v1/funding/assets': [FUNDING, 'Which assets can be deposited and withdrawn, with fees and limits'],
  'GET /api/v1/deposit-address': [FUNDING, 'The deposit address (and tag or memo) for an asset'],
  'GET /api/v1/deposit-reference': [FUNDING, 'The reference to quote on a bank transfer'],
  'GET /api/v1/deposits': [FUNDING, 'Deposits, newest first'],
  'GET /api/v1/funding/pending': [FUNDING, 'Deposits seen but not yet credited, per asset (not spendable)'],
  'POST /api/v1/withdrawals': [FUNDING, 'Request a withdrawal to an address or a bank account'],
  'GET /api/v1/withdrawals': [FUNDING, 'Withdrawals, newest first'],
  'GET /api/v1/withdrawals/limits': [FUNDING, "Per asset, the 24 h withdrawal limit of the user's level, what the last 24 h used of it and what remains"],
  'POST /api/v1/withdrawals/:id/confirm': [FUNDING, 'Confirm a withdrawal with a TOTP code'],
  'DELETE /api/v1/withdrawals/:id': [FUNDING, 'Cancel a withdrawal not yet sent'],
  'GET /api/v1/withdrawals/:id': [FUNDING, 'One withdrawal'],
  'GET /api/v1/withdrawal-addresses': [FUNDING, 'The withdrawal address book'],
  'POST /api/v1/withdrawal-addresses': [FUNDING, 'Add an address to the address book'],
  'DELETE /api/v1/withdrawal-addresses': [FUNDING, 'Remove an address from the address book'],
  'GET /api/v1/bank-accounts': [FUNDING, 'Bank accounts for fiat withdrawals'],
  'POST /api/v1/bank-accounts': [FUNDING, 'Add a bank account (SEPA or SPEI)'],
  'POST /api/v1/transfers': [FUNDING, 'Move funds to another user or between own accounts'],
  'GET /api/v1/transfers': [FUNDING, 'Transfers, newest first'],
  'POST /api/v1/auth/login': [SESSION, 'Log in with email, password and, once enrolled, a TOTP code; returns a session token'],
  'POST /api/v1/auth/logout': [SESSION, 'End the session'],
  'POST /api/v1/auth/signup': [SESSION, 'Sign up with email and password: a code is mailed to the address, and the account opens when it comes back (answered alike whether or not the address has an account; one mail a minute)'],
  'POST /api/v1/auth/signup/confirm': [SESSION, 'Open the account with the mailed code (once, within a day); then log in'],
  'POST /api/v1/auth/email': [SESSION, 'Move the account to another address: with the password (and a TOTP code once enrolled), a code is mailed to the new address (answered alike when it is taken; one mail a minute)'],
  'POST /api/v1/auth/email/confirm': [SESSION, 'Confirm the move with the code mailed to the new address (once, within an hour): the old address is told, every session ends, withdrawals wait out the credential hold'],
  'POST /api/v1/auth/freeze': [SESSION, 'Freeze the account (a suspected theft): with the password, no login, key or withdrawal works until support unfreezes it; sessions end, unsent withdrawals are cancelled'],
  'POST /api/v1/auth/freeze/code': [SESSION, 'Freeze the account without logging in, with the code every warning mail carries (a login from a new address, a withdrawal asked for, a password or address change)'],
  'POST /api/v1/auth/password-reset': [SESSION, 'Forgot the password: a reset code is mailed to the account\'s address (answered alike for unknown addresses; one mail a minute)'],
  'POST /api/v1/auth/password-reset/confirm': [SESSION, 'Set a new password with the mailed code (once, within an hour) and, with two-factor on, a TOTP code: every session ends, withdrawals wait out the credential hold'],
  'POST /api/v1/auth/password': [SESSION, 'Change the password, giving the current one (and a TOTP code once enrolled); other sessions end and withdrawals wait out the credential hold'],
  'GET /api/v1/auth/me': [SESSION, 'The logged-in user'],
  'GET /api/v1/auth/notifications': [SESSION, 'Which mails the user gets that they may turn off: deposits (credited), withdrawals (sent, or returned); warnings always come'],
  'PUT /api/v1/auth/notifications': [SESSION, 'Turn those mails on or off (deposits, withdrawals: true or false)'],
  'GET /api/v1/auth/activity': [SESSION, "The account's security activity, newest first (the last 200 kept): every change to its password, second factor, keys, address, anti-phishing code and withdrawal addresses, and freezing, with when, by whom (user or support) and from where"],
  'PUT /api/v1/auth/anti-phishing': [SESSION, 'Set the anti-phishing code (4 to 20 letters and digits) that every mail to the user shows, so that forged mail lacks it, or remove it (null); a TOTP code once enrolled'],
  'GET /api/v1/auth/sessions': [SESSION, "The user's live sessions, newest first, this one marked current"],
  'GET /api/v1/auth/logins': [SESSION, "The user's login attempts, newest first (the last 100 kept): when, from where, with what client, and how each ended (ok, wrong_password, wrong_totp, locked_out…)"],
  'DELETE /api/v1/auth/sessions/:id': [SESSION, 'End one session (a device left logged in)'],
  'DELETE /api/v1/auth/sessions': [SESSION, 'Log out everywhere else: every session but this one ends'],
  'POST /api/v1/auth/2fa/setup': [SESSION, 'Start two-factor enrolment with the password: a TOTP secret and its otpauth URI'],
  'POST /api/v1/auth/2fa/enable': [SESSION, 'Finish two-factor enrolment with a first code (the owner is mailed; withdrawals wait out the credential hold)'],
  'POST /api/v1/auth/2fa/disable': [SESSION, 'Turn two-factor off with the password and a current code (to move to another device): other sessions end, withdrawals wait out the credential hold, the owner is mailed'],
  'GET /api/v1/auth/apikeys': [SESSION, "The user's API keys (never their secrets)"],
  'POST /api/v1/auth/apikeys': [SESSION, 'Create an API key; its secret is shown once'],
  'DELETE /api/v1/auth/apikeys/:key': [SESSION, 'Revoke an API key'],
  'PATCH /api/v1/auth/apikeys/:key': [SESSION, "Change a key's IP allow-list or label (a TOTP code once enrolled): sockets signed in with it close; a withdraw key's new list holds withdrawals"],
  'POST /admin/v1/backups': [ADMIN, 'Back the exchange up while it trades: journal, identity and funding at one instant, in a new folder of the configured backups.dir'],
  'POST /admin/v1/users': [ADMIN, 'Create a user and its account'],
  'GET /admin/v1/signups': [ADMIN, 'Sign-ups waiting for their mailed code, newest first (or one address\'s): when made and when the code expires'],
  'POST /admin/v1/notice': [ADMIN, 'Set the notice every trader reads in GET /api/v1/status (a maintenance window, an incident), until cleared or until a time'],
  'DELETE /admin/v1/notice': [ADMIN, 'Clear the notice'],
  'GET /admin/v1/mail': [ADMIN, 'Mail to users waiting to go out (pending, with the next attempt) or given up on (failed), with the mail server\'s last answer; never the subject or text, which carry codes'],
  'POST /admin/v1/mail/test': [ADMIN, 'Send a test mail at once, past the queue, and answer what the mail server said (502 with its error when it refused or could not be reached)'],
  'POST /admin/v1/mail/retry': [ADMIN, 'Put a queued mail back in line now, its attempts counted afresh (once the mail server is mended)'],
  'POST /admin/v1/mail/drop': [ADMIN, 'Drop a queued mail'],
  'POST /admin/v1/signups/confirm': [ADMIN, "Open the account of an address's waiting sign-up without its code (support, once the address is known to be the user's), with the password they chose"],
  'GET /admin/v1/ledger': [ADMIN, "Per asset: what users hold (available, reserved, locked), the fees collected, and deposits less withdrawals, which the two add up to"],
  'GET /admin/v1/audit': [ADMIN, 'What operators did through the admin API, newest first: when, who (X-Bourse-Operator), from where, what about and how it ended'],
  'POST /admin/v1/users/kyc': [ADMIN, "Set a user's KYC status and level"],
  'GET /admin/v1/users': [ADMIN, "One user by email (KYC, level, two-factor, whether disabled, active keys, and each account's restriction, open orders and balances), or, without one, users newest first, by KYC status or disabled"],
  'POST /admin/v1/users/password': [ADMIN, "Set a user's password (support reset): their sessions end, withdrawals wait out the credential hold"],
  'POST /admin/v1/users/email': [ADMIN, "Move a user to another address (a lost mailbox): both addresses are told, their sessions end, withdrawals wait out the credential hold"],
  'POST /admin/v1/users/reset-2fa': [ADMIN, "Turn a user's two-factor authentication off (a lost device): their sessions end, withdrawals wait out the credential hold"],
  'POST /admin/v1/users/disable': [ADMIN, "Disable a user: no login, their sessions end, none of their keys works and their sockets close; orders and balances stay"],
  'POST /admin/v1/users/enable': [ADMIN, 'Enable a disabled user again (their keys work again; sessions need a new login)'],
  'POST /admin/v1/accounts/restriction': [ADMIN, "Restrict an account's trading (buy only, sell only, none at all) or lift it; optionally cancel its open orders"],
  'GET /admin/v1/accounts/orders': [ADMIN, "A user's open orders or order history (their main account, or `account`), paged as GET /api/v1/orders pages"],
  'GET /admin/v1/accounts/trades': [ADMIN, "A user's fills (their main account, or `account`), paged as GET /api/v1/trades pages"],
  'GET /admin/v1/accounts/ledger': [ADMIN, "A user's balance changes (their main account, or `account`), paged as GET /api/v1/ledger pages"],
  'GET /admin/v1/users/activity': [ADMIN, "A user's security activity, newest first, as they see it"],
  'GET /admin/v1/users/logins': [ADMIN, "A user's login attempts, newest first: when, from where, with what client, and how each ended"],
  'POST /admin/v1/withdrawals/suspend': [ADMIN_FUNDING, "Suspend an asset's withdrawals (wallet maintenance): new requests are refused with the reason, approved ones wait"],
  'POST /admin/v1/withdrawals/resume': [ADMIN_FUNDING, "Resume an asset's withdrawals: those that waited are sent"],
  'POST /admin/v1/deposits/suspend': [ADMIN_FUNDING, "Suspend an asset's deposits: no address is handed out (the reason instead), and what arrives is credited once resumed"],
  'POST /admin/v1/deposits/resume': [ADMIN_FUNDING, "Resume an asset's deposits: those confirmed meanwhile are credited"],
  'POST /admin/v1/blocks': [ADMIN, 'Block an address or CIDR block (for some minutes, or until lifted): its requests and sockets are refused 403 ADDRESS_BLOCKED, open sockets close'],
  'GET /admin/v1/blocks': [ADMIN, 'The address blocks in force, newest first'],
  'DELETE /admin/v1/blocks': [ADMIN, 'Lift an address block'],
  'GET /admin/v1/rate-bans': [ADMIN, 'Addresses and keys the gateway banned for sending on after 429s, with how long each has left and how many bans it has had (each doubles the next)'],
  'DELETE /admin/v1/rate-bans': [ADMIN, 'Lift a ban (subject as listed): the subject starts again as if it had never been banned'],
  'POST /admin/v1/debits': [ADMIN, "Undo a credit made in error: take available funds out of a user's account (once per key), with a reason for the audit trail"],
  'POST /admin/v1/accounts/cancel-orders': [ADMIN, "Cancel an account's open orders (all, or one market's), as the operator"],
  'GET /admin/v1/accounts/exports/:kind': [ADMIN, "A user's fills, ledger or order history as a CSV file, as they would export it (for a statement)"],
  'POST /admin/v1/markets/state': [ADMIN, 'Set every market to one state at once (halted, cancel_only, post_only or trading): for an incident'],
  'POST /admin/v1/liabilities': [ADMIN, "Publish a proof-of-liabilities report: every user's balances now, as a Merkle sum tree"],
  'POST /admin/v1/fees/collect': [ADMIN, "Move collected fees from the fee account to a user's account (the operator's own), once per key"],
  'POST /admin/v1/fee-levels': [ADMIN, 'Set the maker and taker rates of a user level (paid in every market when lower than its own)'],
  'POST /admin/v1/apikeys': [ADMIN, 'Create an API key for a user; its secret is shown once'],
  'GET /admin/v1/apikeys': [ADMIN, "A user's API keys"],
  'DELETE /admin/v1/apikeys/:key': [ADMIN, 'Revoke an API key'],
  'PATCH /admin/v1/apikeys/:key': [ADMIN, "Change a user's key's IP allow-list or label"],
  'POST /admin/v1/deposits': [ADMIN, 'Credit an account directly (operators and tests)'],
  'POST /admin/v1/assets': [ADMIN, 'Create an asset'],
  'POST /admin/v1/markets': [ADMIN, 'Create a market'],
  'POST /admin/v1/markets/:market/state': [ADMIN, 'Set a market trading, halted, cancel-only or post-only'],
  'POST /admin/v1/markets/:market/fees': [ADMIN, "Set a market's maker and taker fees and, optionally, its volume tiers"],
  'POST /admin/v1/markets/:market/cancel-orders': [ADMIN, 'Cancel every open order in a market, as the operator (before delisting it, say)'],
  'POST /admin/v1/markets/:market/limits': [ADMIN, "Change a market's limits (those given): open orders per account (0: no limit), order quantity and value, price band; resting orders stay"],
  'POST /admin/v1/chain/send': [ADMIN_FUNDING, 'Simulated chain: send coins to an address (a deposit)'],
  'POST /admin/v1/chain/mine': [ADMIN_FUNDING, 'Simulated chain: mine blocks'],
  'POST /admin/v1/chain/reorg': [ADMIN_FUNDING, 'Simulated chain: undo the newest blocks'],
  'POST /admin/v1/chain/pause': [ADMIN_FUNDING, "Simulated chain: take the network's node down (sends fail until resumed)"],
  'POST /admin/v1/chain/resume': [ADMIN_FUNDING, "Simulated chain: bring the network's node back"],
  'GET /admin/v1/chain/outgoing': [ADMIN_FUNDING, 'Simulated chain: transactions the exchange has sent'],
  'GET /admin/v1/withdrawals': [ADMIN_FUNDING, 'Withdrawals of every user, by state'],
  'POST /admin/v1/withdrawals/:id/approve': [ADMIN_FUNDING, 'Approve a withdrawal held for review'],
  'POST /admin/v1/withdrawals/:id/reject': [ADMIN_FUNDING, 'Reject a withdrawal; its funds return'],
  'POST /admin/v1/withdrawals/:id/fail': [ADMIN_FUNDING, 'Give up on a withdrawal stuck before the chain took it; its funds return'],
  'GET /admin/v1/withdrawals/:id/audit': [ADMIN_FUNDING, "A withdrawal's audit trail"],
  'POST /admin/v1/fiat/deposits': [ADMIN_FUNDING, 'Record a received bank transfer (credited by its reference)'],
};

/** A hook that checks a signed request; the docs read the permission it demands. */
export type SignedHook = { signedPermission: Permission };
/** A hook that checks a session token. */
export type SessionHook = { sessionToken: true };

const SIGNED = [{ key: [], timestamp: [], signature: [] }];

/** Adds the route's group, line and authentication to its schema, which @fastify/swagger documents. */
export function documentRoute(route: RouteOptions): void {
  const methods = [route.method].flat();
  const docs = ROUTE_DOCS[`${methods[0]} ${route.url}`];
  if (docs === undefined || route.schema?.hide === true) return;
  const [tag, summary] = docs;
  const hooks = [route.preValidation ?? []].flat() as unknown[];
  const permission = hooks.map((hook) => (hook as Partial<SignedHook>).signedPermission).find((p) => p !== undefined);
  const session = hooks.some((hook) => (hook as Partial<SessionHook>).sessionToken === true);
  const admin = route.url.startsWith('/admin/');
  const auth = permission !== undefined ? { security: SIGNED, description: `Signed; the key needs the \`${permission}\` permission.` }
    : session ? { security: [{ session: [] }], description: 'Needs a session token from POST /api/v1/auth/login.' }
      : admin ? { security: [{ admin: [] }], description: 'Admin token (DATA/admin.token); answered only from the addresses in server.adminAllow.' }
        : { security: [], description: 'Public.' };
  route.schema = { ...route.schema, tags: [tag], summary, ...auth };
}

const BUDGET_HEADERS = {
  'X-RateLimit-Limit': { type: 'integer', description: "Request weight per second of the address's budget, or of the key's when that has less left" },
  'X-RateLimit-Remaining': { type: 'integer', description: 'Weight left after this request; the budget refills continuously' },
};
const REFUSED_FOR_NOW = {
  description: 'Over a request-weight budget (RATE_LIMITED), banned for sending on after 429s (BANNED), or over the user\'s new-order budget (TOO_MANY_ORDERS): nothing was done; wait Retry-After seconds',
  headers: { 'Retry-After': { type: 'integer', description: 'Seconds to wait before sending again' }, ...BUDGET_HEADERS },
  type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

/**
 * For the document only (not the serialisers, which would drop fields a response schema does not
 * list): every API answer's rate-limit headers, and the 429 any API request may get.
 */
export function withBudgetDocs(schema: Record<string, unknown> | undefined, url: string): Record<string, unknown> | undefined {
  if (schema === undefined || !url.startsWith('/api/')) return schema;
  const declared = (schema.response ?? { 200: { description: 'Default Response' } }) as Record<string, Record<string, unknown>>;
  const response: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(declared)) response[status] = { ...answer, headers: { ...(answer.headers as object | undefined), ...BUDGET_HEADERS } };
  response['429'] ??= REFUSED_FOR_NOW;
  return { ...schema, response };
}

/** Every documented route key, for the test that keeps this table and the routes in step. */
export const DOCUMENTED_ROUTES: readonly string[] = Object.keys(ROUTE_DOCS);
