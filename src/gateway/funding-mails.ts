/**
 * Mail about a user's money moving: a withdrawal asked for (the last chance to stop one made with
 * stolen credentials), sent, or stopped with its funds returned; a deposit credited. Driven by
 * the funding service's state changes, so that every path to those states (the API, the
 * operator, the sender, a restart's recovery) is told alike.
 */
import type { Exchange } from '../exchange.js';
import type { WithdrawalRow } from '../funding/store.js';
import { depositCreditedMail, withdrawalRequestedMail, withdrawalSentMail, withdrawalStoppedMail } from '../mail/account-mails.js';
import type { WithdrawalNote } from '../mail/account-mails.js';
import type { Mailer } from '../mail/mailer.js';
import { depositWire, withdrawalWire } from './funding-wire.js';

/** Starts mailing; returns what stops it. */
export function mailFundingChanges(exchange: Exchange, mailer: Mailer): () => void {
  const note = (w: WithdrawalRow): WithdrawalNote => {
    const wire = withdrawalWire(exchange, w);
    const to = w.kind === 'fiat' ? `bank account ${String(w.bank_account_id)}` : `${String(w.address)}${w.tag === null ? '' : ` (tag ${w.tag})`}`;
    return { id: wire.id, asset: w.asset, amount: wire.amount, fee: wire.fee, to, txid: w.txid, reason: w.reason };
  };
  return exchange.funding.onEvent((event) => {
    const email = exchange.identity.user(event.userId)?.email;
    if (email === undefined) return;
    const { config } = mailer;
    if (event.type === 'deposit') {
      if (event.deposit.state !== 'credited') return;
      const wire = depositWire(exchange, event.deposit);
      mailer.send(depositCreditedMail(config, email, { asset: wire.asset, amount: wire.amount, txid: wire.txid }));
      return;
    }
    const w = event.withdrawal;
    // Leaving `requested` is the request taking effect (its funds locked); later approvals are not news.
    if (event.from === 'requested' && w.state !== 'rejected') {
      mailer.send(withdrawalRequestedMail(config, email, note(w), w.state === 'awaiting_2fa' ? 'two_factor' : w.state === 'review' ? 'review' : 'nothing'));
    } else if (w.state === 'sent') {
      mailer.send(withdrawalSentMail(config, email, note(w)));
    } else if ((w.state === 'rejected' && event.from !== 'requested') || w.state === 'failed') {
      // Refused while being requested, it was refused to the request itself: no mail.
      mailer.send(withdrawalStoppedMail(config, email, note(w), w.state));
    }
  });
}
