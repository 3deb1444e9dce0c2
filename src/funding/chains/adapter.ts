/**
 * What the funding service needs from a blockchain: its incoming transfers to our addresses,
 * with confirmations, and sending. Address derivation is separate (addresses.ts): it needs
 * only the operator's extended public key, never a node.
 */
import type { Network } from './addresses.js';

export interface IncomingTransfer {
  network: Network;
  txid: string;
  /** Output index within the transaction: (network, txid, output) names a credit once. */
  output: number;
  address: string;
  tag: string | null;
  asset: string;
  /** Minor units of the asset. */
  amount: number;
  /** 0 while unconfirmed. */
  confirmations: number;
  /** Left the chain (reorg or eviction). */
  dropped: boolean;
}

export interface SendRequest {
  /** Idempotency id: a second send with the same id returns the first transaction. */
  id: string;
  network: Network;
  asset: string;
  address: string;
  tag: string | null;
  amount: number;
}

export interface ChainAdapter {
  /** Broadcasts a payment, at most once per request id. */
  send(request: SendRequest): Promise<{ txid: string }>;
  /** The transaction of an earlier send with this id, if it was broadcast. */
  sent(id: string): Promise<{ txid: string } | undefined>;
  /** Subscribes to incoming transfers as they appear, confirm, or drop; may repeat or reorder. */
  watch(listener: (transfer: IncomingTransfer) => void): () => void;
  /** Announces again every transfer it knows that may still matter (a watcher after a restart). */
  catchUp(): void;
}
