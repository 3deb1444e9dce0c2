/**
 * Proof of liabilities: the operator publishes, now and then, a report of what the exchange owes
 * its users (every balance, available, reserved and locked, of every user's accounts, as of one
 * journal seq) as a Merkle sum tree (liabilities-tree.ts). The report's totals and root hash are
 * public; each user can fetch the path from their own leaf to the root and check that they are
 * counted, at their balances, in the totals the exchange shows. Set against what the exchange
 * holds on chain, the totals are the other half of a proof of reserves.
 *
 * Kept in the funding database (so backups carry it): the report, and every node of its tree so
 * that a user's path is read, not recomputed. Salts are derived from a key the identity store
 * derives from the master key, so they are never stored and no one reading the database learns a
 * leaf's salt.
 */
import { createHmac } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { Engine, UserHoldings } from '../core/index.js';
import { statementCache } from '../store/statement-cache.js';
import { amountText, leafNode, parentNode } from './liabilities-tree.js';
import type { LiabilityProof, ReportAsset, TreeNode } from './liabilities-tree.js';

export interface LiabilityReport {
  id: number;
  seq: number;
  takenAt: number;
  assets: ReportAsset[];
  rootHash: string;
  /** The root's sums: what the exchange owes in each asset, in the order of `assets`. */
  totals: string[];
  users: number;
  actor: string;
}

interface ReportRow { id: number; seq: number; taken_at: number; assets: string; root_hash: string; root_sums: string; users: number; actor: string }

/**
 * Nodes hashed or written per turn of the event loop while a report is built (even: a slice holds
 * whole pairs): a few milliseconds of work, which is as long as trading waits for it.
 */
const NODES_PER_TURN = 500;

export class LiabilityReportBusy extends Error {}

export class LiabilityReports {
  private readonly sql: ReturnType<typeof statementCache>;
  private building = false;

  /**
   * `holdings` reads every user's balances at one seq; by default on `engine` here, which stops
   * everything else meanwhile (60–130 ms per 100,000 users, bench:micro). The exchange reads them
   * on its read-model thread's replica instead, when it has one.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly engine: () => Engine,
    private readonly saltKey: Buffer,
    private readonly clock: () => number,
    private readonly holdings: (assets: readonly string[]) => Promise<UserHoldings> = async (assets) => engine().userHoldings(assets),
  ) {
    this.sql = statementCache(db);
    db.exec(`
      CREATE TABLE IF NOT EXISTS liability_reports (
        id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, taken_at INTEGER NOT NULL, assets TEXT NOT NULL, root_hash TEXT,
        root_sums TEXT, users INTEGER NOT NULL, actor TEXT NOT NULL, state TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS liability_nodes (
        report INTEGER NOT NULL, level INTEGER NOT NULL, position INTEGER NOT NULL, hash TEXT NOT NULL, sums TEXT NOT NULL,
        PRIMARY KEY (report, level, position)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS liability_leaves (
        report INTEGER NOT NULL, user_id INTEGER NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (report, user_id)
      ) WITHOUT ROWID;
    `);
    // A report whose building a stop interrupted was never published: it goes.
    for (const { id } of db.prepare("SELECT id FROM liability_reports WHERE state = 'building'").all() as { id: number }[]) this.discard(id);
  }

  private discard(id: number): void {
    this.db.transaction(() => {
      for (const table of ['liability_nodes', 'liability_leaves']) this.sql(`DELETE FROM ${table} WHERE report = ?`).run(id);
      this.sql('DELETE FROM liability_reports WHERE id = ?').run(id);
    })();
  }

  private salt(report: number, userId: number): string {
    return createHmac('sha256', this.saltKey).update(`${report}:${userId}`).digest('hex');
  }

  /**
   * Takes every user's balances as the engine holds them now (one consistent seq), then builds
   * and stores the tree a slice at a time so that trading goes on meanwhile.
   */
  async publish(actor: string): Promise<LiabilityReport> {
    if (this.building) throw new LiabilityReportBusy('a report is being built; try again once it is published');
    this.building = true;
    try {
      const engine = this.engine();
      const assets: ReportAsset[] = engine.assetList.map((a) => ({ asset: a.code, precision: a.precision })).sort((a, b) => (a.asset < b.asset ? -1 : 1));
      const codes = assets.map((a) => a.asset);
      // The balances of one seq.
      const { seq, users, sums } = await this.holdings(codes);
      const width = codes.length;
      const takenAt = this.clock();
      const id = Number(this.sql(`INSERT INTO liability_reports (seq, taken_at, assets, users, actor, state) VALUES (?, ?, ?, ?, ?, 'building')`)
        .run(seq, takenAt, JSON.stringify(assets), users.length, actor).lastInsertRowid);
      try {
        const text = (node: TreeNode) => node.sums.map((s, i) => amountText(s, assets[i]!.precision)).join(',');
        // Every step below is done a slice at a time, the event loop turning between slices.
        const hashed: { userId: number | null; node: TreeNode }[] = [];
        const order = new HashOrder(users.length);
        for (let start = 0; start < users.length; start += NODES_PER_TURN) {
          for (let i = start; i < Math.min(users.length, start + NODES_PER_TURN); i++) {
            const userId = users[i]!;
            const held = Array.from(sums.subarray(i * width, (i + 1) * width), BigInt);
            const node = leafNode(this.salt(id, userId), held, assets);
            order.add(i, node.hash);
            hashed.push({ userId, node });
          }
          await nextTurn();
        }
        // Leaves in the order of their hashes, so that a leaf's place tells nothing of whose it is.
        order.sort();
        await nextTurn();
        const leaves = order.arrange(hashed);
        await nextTurn();
        // A venue without users still gets a root: one leaf of zeros that no user holds.
        if (leaves.length === 0) leaves.push({ userId: null, node: leafNode(this.salt(id, 0), assets.map(() => 0n), assets) });
        let nodes: TreeNode[] = leaves.map((l) => l.node);
        for (let level = 0; ; level++) {
          const above: TreeNode[] = [];
          for (let start = 0; start < nodes.length; start += NODES_PER_TURN) {
            const end = Math.min(nodes.length, start + NODES_PER_TURN);
            this.db.transaction(() => {
              for (let i = start; i < end; i++) {
                this.sql('INSERT INTO liability_nodes (report, level, position, hash, sums) VALUES (?, ?, ?, ?, ?)').run(id, level, i, nodes[i]!.hash, text(nodes[i]!));
                if (level === 0 && leaves[i]!.userId !== null) this.sql('INSERT INTO liability_leaves (report, user_id, position) VALUES (?, ?, ?)').run(id, leaves[i]!.userId, i);
              }
            })();
            // The level above, as far as this slice's pairs reach (slices start at even positions).
            for (let i = start; i < end; i += 2) above.push(i + 1 < nodes.length ? parentNode(nodes[i]!, nodes[i + 1]!, assets) : nodes[i]!);
            await nextTurn();
          }
          if (nodes.length === 1) break;
          nodes = above;
        }
        const root = nodes[0]!;
        this.sql("UPDATE liability_reports SET root_hash = ?, root_sums = ?, state = 'published' WHERE id = ?").run(root.hash, text(root), id);
      } catch (error) {
        this.discard(id);
        throw error;
      }
      return this.report(id)!;
    } finally {
      this.building = false;
    }
  }

  report(id: number): LiabilityReport | undefined {
    const row = this.sql("SELECT * FROM liability_reports WHERE id = ? AND state = 'published'").get(id) as ReportRow | undefined;
    return row === undefined ? undefined : reportOf(row);
  }

  /** Published reports, newest first. */
  reports(limit: number): LiabilityReport[] {
    return (this.sql("SELECT * FROM liability_reports WHERE state = 'published' ORDER BY id DESC LIMIT ?").all(limit) as ReportRow[]).map(reportOf);
  }

  /** A user's leaf and path in a report (the newest when none is named); undefined when the report does not count them. */
  proof(userId: number, reportId?: number): { report: LiabilityReport; proof: LiabilityProof } | undefined {
    const report = reportId === undefined ? this.reports(1)[0] : this.report(reportId);
    if (report === undefined) return undefined;
    const leaf = this.sql('SELECT position FROM liability_leaves WHERE report = ? AND user_id = ?').get(report.id, userId) as { position: number } | undefined;
    if (leaf === undefined) return undefined;
    const node = (level: number, position: number) =>
      this.sql('SELECT hash, sums FROM liability_nodes WHERE report = ? AND level = ? AND position = ?').get(report.id, level, position) as { hash: string; sums: string } | undefined;
    const path: LiabilityProof['path'] = [];
    let position = leaf.position;
    for (let level = 0, count = report.users; count > 1; level++, count = Math.ceil(count / 2), position >>= 1) {
      const sibling = node(level, position ^ 1);
      if (sibling !== undefined) path.push({ side: position % 2 === 1 ? 'left' : 'right', hash: sibling.hash, sums: sibling.sums.split(',') });
    }
    return {
      report,
      proof: {
        assets: report.assets, root: { hash: report.rootHash, sums: report.totals },
        leaf: { salt: this.salt(report.id, userId), balances: node(0, leaf.position)!.sums.split(',') }, path,
      },
    };
  }
}

/**
 * Leaves sorted by their hashes' leading bits, as one typed-array sort of numbers that each hold
 * those bits above the leaf's index (a sort of objects took half of a report's longest pause).
 * Each key is made as its leaf is hashed, a slice at a time; parsing them all at the end as
 * bigints held the event loop 58 ms at 100,000 users.
 */
class HashOrder {
  private readonly keys: Float64Array;
  private readonly indexBits: number;
  private readonly dropped: number;

  constructor(count: number) {
    this.keys = new Float64Array(count);
    this.indexBits = Math.max(1, Math.ceil(Math.log2(count + 1)));
    // Of the hash's first 48 bits, as many as fit beside the index in a double's 53.
    this.dropped = 2 ** (48 - Math.min(48, 53 - this.indexBits));
  }

  add(index: number, hash: string): void {
    const lead = Math.floor(parseInt(hash.slice(0, 12), 16) / this.dropped);
    this.keys[index] = lead * 2 ** this.indexBits + index;
  }

  sort(): void {
    this.keys.sort();
  }

  /** The leaves in the sorted keys' order (a loop: Array.from with a mapping took three times as long). */
  arrange<T>(leaves: readonly T[]): T[] {
    const arranged = new Array<T>(leaves.length);
    const indexes = 2 ** this.indexBits;
    for (let i = 0; i < leaves.length; i++) arranged[i] = leaves[this.keys[i]! % indexes]!;
    return arranged;
  }
}

function reportOf(row: ReportRow): LiabilityReport {
  return {
    id: row.id, seq: row.seq, takenAt: row.taken_at, assets: JSON.parse(row.assets) as ReportAsset[], rootHash: row.root_hash,
    totals: row.root_sums.split(','), users: row.users, actor: row.actor,
  };
}
