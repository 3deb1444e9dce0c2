/** Deposits and withdrawals as the native API and the `funding` socket channel show them. */
import type { Exchange } from '../exchange.js';
import type { DepositRow, WithdrawalRow } from '../funding/store.js';
import { formatMinor } from '../money/index.js';

const scaleOf = (exchange: Exchange, asset: string): number => exchange.engine.assets.get(asset)?.precision ?? 0;

/**
 * `held_reason`: why a deposit with all its confirmations is not credited yet, or an approved
 * withdrawal not sent: the operator's notice of the asset's suspension. Null otherwise.
 */
export function depositWire(exchange: Exchange, d: DepositRow) {
  const held = d.state === 'confirming' && d.confirmations >= d.required ? exchange.funding.suspension(d.asset, 'deposits') : null;
  return {
    id: String(d.id), asset: d.asset, network: d.network, txid: d.txid, output: d.output, address: d.address, tag: d.tag,
    amount: formatMinor(d.amount, scaleOf(exchange, d.asset)), confirmations: d.confirmations, required_confirmations: d.required, state: d.state,
    held_reason: held?.reason ?? null, created_at: d.created_at, updated_at: d.updated_at,
  };
}

export function withdrawalWire(exchange: Exchange, w: WithdrawalRow) {
  const scale = scaleOf(exchange, w.asset);
  const held = w.state === 'approved' ? exchange.funding.suspension(w.asset, 'withdrawals') : null;
  return {
    id: String(w.id), request_id: w.request_key, asset: w.asset, amount: formatMinor(w.amount, scale), fee: formatMinor(w.fee, scale),
    kind: w.kind, address: w.address, tag: w.tag, bank_account_id: w.bank_account_id === null ? null : String(w.bank_account_id),
    state: w.state, held_reason: held?.reason ?? null, txid: w.txid, reason: w.reason, created_at: w.created_at, updated_at: w.updated_at,
  };
}
