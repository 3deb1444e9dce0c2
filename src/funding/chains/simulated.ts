/**
 * A simulated blockchain for development, demos and tests, kept in SQLite so that it survives
 * restarts: incoming payments enter the mempool, blocks confirm them, a reorg drops the newest
 * blocks and their transactions. Operators drive it with `bourse admin chain …`.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Network } from './addresses.js';
import type { ChainAdapter, IncomingTransfer, SendRequest } from './adapter.js';

interface TxRow { txid: string; network: Network; direction: 'in' | 'out'; send_id: string | null; address: string; tag: string | null; asset: string; amount: number; block: number | null; dropped: number }

export class SimulatedChain implements ChainAdapter {
  private readonly listeners = new Set<(transfer: IncomingTransfer) => void>();
  /** Networks whose node is "down": sends fail (transiently) until resumed. */
  private readonly paused = new Set<Network>();

  constructor(private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS sim_heights (network TEXT PRIMARY KEY, height INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sim_txs (
        txid TEXT PRIMARY KEY, network TEXT NOT NULL, direction TEXT NOT NULL, send_id TEXT UNIQUE,
        address TEXT NOT NULL, tag TEXT, asset TEXT NOT NULL, amount INTEGER NOT NULL,
        block INTEGER, dropped INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL
      );
    `);
  }

  height(network: Network): number {
    return (this.db.prepare('SELECT height FROM sim_heights WHERE network = ?').get(network) as { height: number } | undefined)?.height ?? 0;
  }

  /** An incoming payment to `address` (in the mempool until a block is mined). */
  receive(payment: { network: Network; address: string; tag: string | null; asset: string; amount: number }): string {
    const txid = this.newTxid(payment.network);
    this.db.prepare('INSERT INTO sim_txs (txid, network, direction, address, tag, asset, amount, created) VALUES (?, ?, \'in\', ?, ?, ?, ?, ?)')
      .run(txid, payment.network, payment.address, payment.tag, payment.asset, payment.amount, this.txCount() + 1);
    this.announce(payment.network, [txid]);
    return txid;
  }

  /** Mines `blocks` blocks; the first includes the whole mempool. */
  mine(network: Network, blocks = 1): number {
    const height = this.height(network) + blocks;
    const included = this.db.prepare('SELECT txid FROM sim_txs WHERE network = ? AND block IS NULL AND dropped = 0').all(network) as { txid: string }[];
    this.db.transaction(() => {
      this.db.prepare('UPDATE sim_txs SET block = ? WHERE network = ? AND block IS NULL AND dropped = 0').run(height - blocks + 1, network);
      this.db.prepare('INSERT INTO sim_heights (network, height) VALUES (?, ?) ON CONFLICT (network) DO UPDATE SET height = excluded.height').run(network, height);
    })();
    const confirming = this.db.prepare('SELECT txid FROM sim_txs WHERE network = ? AND direction = \'in\' AND dropped = 0 AND block IS NOT NULL').all(network) as { txid: string }[];
    this.announce(network, [...new Set([...included.map((r) => r.txid), ...confirming.map((r) => r.txid)])]);
    return height;
  }

  /** Removes the newest `depth` blocks; their transactions are dropped (not returned to the mempool). */
  reorg(network: Network, depth: number): { height: number; dropped: string[] } {
    const height = Math.max(0, this.height(network) - depth);
    const dropped = this.db.prepare('SELECT txid FROM sim_txs WHERE network = ? AND block > ?').all(network, height) as { txid: string }[];
    this.db.transaction(() => {
      this.db.prepare('UPDATE sim_txs SET dropped = 1 WHERE network = ? AND block > ?').run(network, height);
      this.db.prepare('INSERT INTO sim_heights (network, height) VALUES (?, ?) ON CONFLICT (network) DO UPDATE SET height = excluded.height').run(network, height);
    })();
    this.announce(network, dropped.map((r) => r.txid));
    return { height, dropped: dropped.map((r) => r.txid) };
  }

  pause(network: Network): void {
    this.paused.add(network);
  }

  resume(network: Network): void {
    this.paused.delete(network);
  }

  async send(request: SendRequest): Promise<{ txid: string }> {
    const earlier = await this.sent(request.id);
    if (earlier !== undefined) return earlier;
    if (this.paused.has(request.network)) throw new Error(`${request.network} node unavailable (paused)`);
    const txid = this.newTxid(request.network);
    this.db.prepare('INSERT INTO sim_txs (txid, network, direction, send_id, address, tag, asset, amount, created) VALUES (?, ?, \'out\', ?, ?, ?, ?, ?, ?)')
      .run(txid, request.network, request.id, request.address, request.tag, request.asset, request.amount, this.txCount() + 1);
    return { txid };
  }

  async sent(id: string): Promise<{ txid: string } | undefined> {
    const row = this.db.prepare('SELECT txid FROM sim_txs WHERE send_id = ?').get(id) as { txid: string } | undefined;
    return row === undefined ? undefined : { txid: row.txid };
  }

  /** Outgoing transactions (what the exchange paid out), for operators and tests. */
  outgoing(): Omit<TxRow, 'direction'>[] {
    return this.db.prepare('SELECT txid, network, send_id, address, tag, asset, amount, block, dropped FROM sim_txs WHERE direction = \'out\' ORDER BY created').all() as Omit<TxRow, 'direction'>[];
  }

  watch(listener: (transfer: IncomingTransfer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  catchUp(): void {
    for (const network of this.db.prepare('SELECT DISTINCT network FROM sim_txs WHERE direction = \'in\'').all() as { network: Network }[]) {
      const txids = this.db.prepare('SELECT txid FROM sim_txs WHERE network = ? AND direction = \'in\'').all(network.network) as { txid: string }[];
      this.announce(network.network, txids.map((r) => r.txid));
    }
  }

  private announce(network: Network, txids: string[]): void {
    const height = this.height(network);
    const select = this.db.prepare('SELECT * FROM sim_txs WHERE txid = ?');
    for (const txid of txids) {
      const row = select.get(txid) as TxRow;
      if (row.direction !== 'in') continue;
      const transfer: IncomingTransfer = {
        network, txid, output: 0, address: row.address, tag: row.tag, asset: row.asset, amount: row.amount,
        confirmations: row.block === null || row.dropped === 1 ? 0 : height - row.block + 1, dropped: row.dropped === 1,
      };
      for (const listener of this.listeners) listener(transfer);
    }
  }

  private txCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM sim_txs').get() as { n: number }).n;
  }

  private newTxid(network: Network): string {
    const hex = createHash('sha256').update(`${network}:${this.txCount()}:${process.hrtime.bigint()}`).digest('hex');
    return network === 'ethereum' ? `0x${hex}` : hex;
  }
}
