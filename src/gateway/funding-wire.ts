/** Deposits and withdrawals as the native API and the `funding` socket channel show them. */
import type { Exchange } from '../exchange.js';
import type { DepositRow, WithdrawalRow } from '../funding/store.js';
import { formatMinor } from '../money/index.js';

const scaleOf = (exchange: Exchange, asset: string): number => exchange.engine.assets.get(asset)?.precision ?? 0;

export function depositWire(exchange: Exchange, d: DepositRow) {
  return {
    id: String(d.id), asset: d.asset, network: d.network, txid: d.txid, output: d.output, address: d.address, tag: d.tag,
    amount: formatMinor(d.amount, scaleOf(exchange, d.asset)), confirmations: d.confirmations, required_confirmations: d.required, state: d.state,
    created_at: d.created_at, updated_at: d.updated_at,
  };
}

export function withdrawalWire(exchange: Exchange, w: WithdrawalRow) {
  const scale = scaleOf(exchange, w.asset);
  return {
    id: String(w.id), request_id: w.request_key, asset: w.asset, amount: formatMinor(w.amount, scale), fee: formatMinor(w.fee, scale),
    kind: w.kind, address: w.address, tag: w.tag, bank_account_id: w.bank_account_id === null ? null : String(w.bank_account_id),
    state: w.state, txid: w.txid, reason: w.reason, created_at: w.created_at, updated_at: w.updated_at,
  };
}
