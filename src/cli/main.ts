#!/usr/bin/env node
/**
 * `bourse` command line.
 *
 *   bourse start  [--data DIR] [--port N] [--host H] [--demo] [--snapshot-every N]
 *   bourse verify [--data DIR]
 *   bourse admin <command> [--data DIR | --url URL] ...   (see admin.ts)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findViolations } from '../core/index.js';
import { recover, requireJournal, SqliteJournal } from '../journal/index.js';
import { runAdmin } from './admin.js';
import { startServer } from './start.js';
import { loadConfig } from '../config.js';
import { rebuildReadModel } from '../exchange.js';
import { restoreBackup } from '../backup.js';
import { proofProblem } from '../funding/liabilities-tree.js';
import type { LiabilityProof } from '../funding/liabilities-tree.js';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Replays the journal from genesis and from its newest snapshot; exit code 1 if they disagree or an invariant is broken. */
function verify(dataDir: string) {
  requireJournal(dataDir);
  const journal = new SqliteJournal(join(dataDir, 'journal.db'));
  try {
    const fromGenesis = recover(journal, { ignoreSnapshots: true });
    const fromSnapshot = recover(journal);
    const violations = findViolations(fromGenesis.engine);
    const report = {
      lastSeq: fromGenesis.report.lastSeq,
      stateHash: fromGenesis.engine.stateHash(),
      snapshotAgrees: fromSnapshot.engine.stateHash() === fromGenesis.engine.stateHash(),
      snapshotSeq: fromSnapshot.report.snapshotSeq,
      skippedSnapshots: fromSnapshot.report.skippedSnapshots,
      replaySeconds: fromGenesis.report.seconds,
      violations,
    };
    if (!report.snapshotAgrees || violations.length > 0) process.exitCode = 1;
    return report;
  } finally {
    journal.close();
  }
}

const USAGE = `usage:
  bourse start  [--data DIR] [--config FILE] [--port N] [--host H] [--demo] [--snapshot-every N]
  bourse verify [--data DIR]
  bourse rebuild [--data DIR]          rebuild the read model (orders, trades, candles) from the journal
  bourse restore --from BACKUP [--data DIR]   copy a backup into a new data folder and verify it
                                       (add the master key; the read model is rebuilt on start)
  bourse verify-liabilities --file PROOF   check a proof-of-liabilities proof (the JSON of GET /api/v1/account/liabilities)
                                       offline; exit code 1 if it does not lead to its root
  bourse help                          this text (also --help, -h)
  bourse admin  user create --email E --password P
                user kyc --email E --kyc NOT_VERIFIED|PENDING|OK|REJECTED --level N
                user show --email E                  (KYC, level, keys; each account's restriction, open orders, balances)
                user logins --email E [--limit N]    (login attempts, newest first: when, from where, how they ended)
                user activity --email E [--limit N]  (changes to the password, second factor, keys, address and withdrawal addresses)
                signup list [--email E] [--limit N]  (sign-ups by mail waiting for their code, newest first)
                signup confirm --email E             (opens a waiting sign-up's account without its code: a mail that never came)
                notice set --text T [--hours N] | notice clear   (what every trader reads in GET /api/v1/status: maintenance, an incident)
                mail list [--state pending|failed] [--email E] [--limit N]   (mail waiting to go out or given up on, and why)
                mail retry --id N | mail drop --id N (a mail given up on goes out again, once the mail server is mended; or is dropped)
                mail test --to E                     (one mail at once, past the queue: checks the mail settings, prints the server's answer)
                user orders|trades|ledger --email E [--account N] [--market M | --asset A] [--status all]
                       [--from MS] [--to MS] [--after ID | --before ID] [--limit N]   (what the user sees, for support)
                user export --email E --kind trades|ledger|orders --out FILE [--account N] [--market M | --asset A]
                       [--from MS] [--to MS]   (the whole history as CSV, for a statement)
                user list [--kyc STATUS] [--disabled] [--limit N] [--before ID]   (newest first; --kyc PENDING: the review queue)
                user disable|enable --email E        (disabled: no login, no key works, sockets close; orders stay)
                user password --email E --password P  (support reset; sessions end, withdrawals wait out the hold)
                user email --email E --new-email N   (support: the account moves to another address; both are told, sessions end)
                user reset-2fa --email E             (two-factor off, for a lost device; sessions end, withdrawals held)
                account restrict --email E --restriction none|buy_only|sell_only|no_trading [--account N] [--cancel-orders]
                orders cancel --email E [--account N] [--market M]     (the account's open orders, as the operator)
                apikey create --email E --permissions read,trade[,withdraw] [--ip CIDR[,CIDR]] [--account N]
                       [--label TEXT] [--expires-days N] [--public-key-file PEM]   (an Ed25519 key: the user keeps the private key)
                apikey edit --email E --key K [--ip CIDR[,CIDR]] [--label TEXT]   (where the key may be used from; sockets on it close)
                apikey list --email E                  (labels, accounts, permissions, and when and from where each was last used)
                apikey revoke --email E --key K                        (sockets signed in with it close at once)
                deposit --email E --asset A --amount X [--key K]       (credits the main account; once per key)
                debit --email E --asset A --amount X --reason TEXT [--account N] [--key K]
                       (undoes a credit made in error: available funds leave the books; once per key)
                asset create --code C --precision N [--min-fee F]
                market create --base B --quote Q --tick T --lot L [--max-open-orders N] [--maker F --taker F]
                       [--min-quantity X] [--max-quantity X] [--min-notional X] [--max-notional X]
                       [--band-low F] [--band-high F]             (limit prices within F × the last price)
                       [--collar F]            (market orders trade within F of the last price, 0.05: 5 %; the rest expires)
                market halt|resume|cancel-only|post-only --market M | --all   (--all: every market, for an incident)
                market limit --market M [--max-open-orders N] [--min-quantity X] [--max-quantity X]
                       [--min-notional X] [--max-notional X] [--band-low F] [--band-high F] [--collar F]   (those given change;
                       open orders per account 0: no limit; a band of 0: none; resting orders stay)
                market cancel-orders --market M                  (every open order in the market)
                fees set --market M --maker F --taker F [--tiers VOLUME:MAKER:TAKER,…|none]   (tiers by 30-day quote volume)
                fees level --level N --maker F --taker F        (users of level N pay these in every market, when lower)
                fees collect --email E --asset A --amount X [--key K]   (collected fees to that user's account; once per key)
                chain send --address ADDR --asset A --amount X [--tag T]   (simulated chain: incoming payment)
                chain mine --network bitcoin|ethereum|ripple|stellar|nem [--blocks N]
                chain reorg --network N --depth N
                chain pause|resume --network N                          (simulated node down / back)
                withdrawal list [--state S] [--asset A] [--email E] [--from MS] [--to MS] [--after ID | --before ID] [--limit N]
                withdrawal audit --id N                                (who did what to it, and when)
                withdrawal approve --id N --operator NAME
                withdrawal reject --id N --operator NAME --reason TEXT
                withdrawal fail --id N --operator NAME --reason TEXT     (stuck before the chain took it)
                withdrawal suspend --asset A --operator NAME --reason TEXT   (wallet maintenance: new ones refused, approved ones wait)
                withdrawal resume --asset A --operator NAME              (the ones that waited are sent)
                deposit suspend|resume --asset A --operator NAME [--reason TEXT]   (no address handed out; arrivals credited on resume)
                fiat deposit --reference BRS… --asset A --amount X --bank-reference R --operator NAME
                liabilities publish   (a proof-of-liabilities report: every user's balances now, as a Merkle sum tree)
                backup [--name NAME]   (journal, identity and funding at one instant, into backups.dir/NAME; default NAME: the time)
                audit [--limit N] [--before ID]                  (what operators did, newest first)
                ip block --cidr ADDRESS|CIDR --reason TEXT [--minutes N]   (refused at once, sockets closed; not the admin API)
                ip unblock --cidr ADDRESS|CIDR · ip list
                ban list · ban lift --subject ip:ADDRESS|key:KEY   (automatic bans for sending on after 429s)
                ledger                 (per asset: users' balances, fees collected, deposits less withdrawals)
                (each takes --data DIR, default ./data, or --url URL; and --operator NAME for the audit trail,
                 by default the login name)
`;

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      data: { type: 'string', default: './data' },
      port: { type: 'string' },
      host: { type: 'string' },
      demo: { type: 'boolean', default: false },
      config: { type: 'string' },
      'snapshot-every': { type: 'string' },
      url: { type: 'string' },
      email: { type: 'string' },
      'new-email': { type: 'string' },
      password: { type: 'string' },
      permissions: { type: 'string' },
      ip: { type: 'string' },
      asset: { type: 'string' },
      amount: { type: 'string' },
      code: { type: 'string' },
      precision: { type: 'string' },
      base: { type: 'string' },
      quote: { type: 'string' },
      tick: { type: 'string' },
      lot: { type: 'string' },
      market: { type: 'string' },
      maker: { type: 'string' },
      taker: { type: 'string' },
      address: { type: 'string' },
      tag: { type: 'string' },
      network: { type: 'string' },
      blocks: { type: 'string' },
      subject: { type: 'string' },
      depth: { type: 'string' },
      id: { type: 'string' },
      operator: { type: 'string' },
      reason: { type: 'string' },
      state: { type: 'string' },
      reference: { type: 'string' },
      'bank-reference': { type: 'string' },
      account: { type: 'string' },
      'max-open-orders': { type: 'string' },
      kyc: { type: 'string' },
      level: { type: 'string' },
      key: { type: 'string' },
      label: { type: 'string' },
      cidr: { type: 'string' },
      minutes: { type: 'string' },
      text: { type: 'string' },
      hours: { type: 'string' },
      'expires-days': { type: 'string' },
      after: { type: 'string' },
      to: { type: 'string' },
      status: { type: 'string' },
      name: { type: 'string' },
      from: { type: 'string' },
      restriction: { type: 'string' },
      'cancel-orders': { type: 'boolean' },
      tiers: { type: 'string' },
      limit: { type: 'string' },
      disabled: { type: 'boolean' },
      all: { type: 'boolean' },
      out: { type: 'string' },
      kind: { type: 'string' },
      'min-fee': { type: 'string' },
      'public-key-file': { type: 'string' },
      file: { type: 'string' },
      'min-quantity': { type: 'string' },
      'max-quantity': { type: 'string' },
      'min-notional': { type: 'string' },
      'max-notional': { type: 'string' },
      'band-low': { type: 'string' },
      'band-high': { type: 'string' },
      collar: { type: 'string' },
      before: { type: 'string' },
    },
  });
  if (values.help || positionals[0] === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const dataDir = resolve(values.data);
  switch (positionals[0]) {
    case 'start': {
      const config = loadConfig(values.config);
      if (values.port !== undefined) config.server.port = Number(values.port);
      if (values.host !== undefined) config.server.host = values.host;
      if (values['snapshot-every'] !== undefined) config.journal.snapshotEvery = Number(values['snapshot-every']);
      const port = config.server.port;
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error('port must be 0..65535');
      if (!Number.isSafeInteger(config.journal.snapshotEvery) || config.journal.snapshotEvery <= 0) throw new Error('snapshotEvery must be a positive integer');
      await startServer({ dataDir, demo: values.demo, config });
      return;
    }
    case 'verify':
      print(verify(dataDir));
      return;
    case 'restore': {
      if (values.from === undefined) throw new Error('--from BACKUP is required');
      const restored = restoreBackup(resolve(values.from), dataDir);
      // The copy is checked as bourse verify would; its last seq must be the backup's.
      const verified = verify(dataDir);
      if (verified.lastSeq !== restored.lastSeq) throw new Error(`the restored journal ends at seq ${verified.lastSeq}, the backup says ${restored.lastSeq}`);
      print({ event: 'restored', from: resolve(values.from), dataDir, ...restored, verified });
      return;
    }
    case 'verify-liabilities': {
      if (values.file === undefined) throw new Error('--file PROOF is required');
      const proof = JSON.parse(readFileSync(resolve(values.file), 'utf8')) as LiabilityProof & { report?: { id?: string } };
      const problem = proofProblem(proof);
      if (problem !== null) process.exitCode = 1;
      print({
        verified: problem === null, ...(problem === null ? {} : { problem }), report: proof.report?.id ?? null, root_hash: proof.root.hash,
        balances: Object.fromEntries(proof.assets.map((a, i) => [a.asset, proof.leaf.balances[i]])),
        totals: Object.fromEntries(proof.assets.map((a, i) => [a.asset, proof.root.sums[i]])),
      });
      return;
    }
    case 'rebuild': {
      print({ event: 'rebuilt', ...rebuildReadModel(dataDir) });
      return;
    }
    case 'admin':
      print(await runAdmin(positionals.slice(1), { ...values, dataDir }));
      return;
    default:
      process.stderr.write(USAGE);
      process.exitCode = 2;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
  process.exit(1);
});
