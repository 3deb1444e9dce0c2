/**
 * A Merkle sum tree over what the exchange owes each user (proof of liabilities).
 *
 * Each leaf is one user's balances in every asset of the report, with a secret salt that only
 * that user is given; each node carries the hash of its two children and the sums of their
 * balances. The root's sums are the total the exchange owes. A user who holds their leaf and the
 * path of siblings to the root can check that their balances are counted in that total: a node
 * cannot leave a user out or count them twice without changing the root, and since every node's
 * sums must be the sums of its children, none of which may be negative, no invented negative
 * balance can make the total look smaller than what is owed.
 *
 *   leaf = sha256("leaf:" + salt + ":" + b1 + "," + b2 + …)
 *   node = sha256("node:" + left + ":" + right + ":" + s1 + "," + s2 + …)
 *
 * where b and s are decimal strings with exactly the asset's decimals, in the report's asset
 * order. A level with an odd count carries its last node up unchanged (no sibling in the path).
 */
import { createHash } from 'node:crypto';

export interface ReportAsset { asset: string; precision: number }

export interface TreeNode { hash: string; sums: bigint[] }

export interface PathStep { side: 'left' | 'right'; hash: string; sums: string[] }

export interface LiabilityProof {
  assets: ReportAsset[];
  root: { hash: string; sums: string[] };
  leaf: { salt: string; balances: string[] };
  /** The siblings from the leaf up, each on the side where it sits. */
  path: PathStep[];
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Minor units as the tree writes them: all of the asset's decimals. */
export function amountText(units: bigint, precision: number): string {
  const digits = units.toString().padStart(precision + 1, '0');
  return precision === 0 ? digits : `${digits.slice(0, -precision)}.${digits.slice(-precision)}`;
}

/** The units of an amount written with exactly `precision` decimals, or null for anything else (negative ones too). */
function amountUnits(text: string, precision: number): bigint | null {
  const pattern = precision === 0 ? /^(0|[1-9][0-9]*)$/ : new RegExp(`^(0|[1-9][0-9]*)\\.[0-9]{${precision}}$`);
  return pattern.test(text) ? BigInt(text.replace('.', '')) : null;
}

const texts = (sums: readonly bigint[], assets: readonly ReportAsset[]): string[] => sums.map((s, i) => amountText(s, assets[i]!.precision));

export function leafNode(salt: string, balances: readonly bigint[], assets: readonly ReportAsset[]): TreeNode {
  return { hash: sha256(`leaf:${salt}:${texts(balances, assets).join(',')}`), sums: [...balances] };
}

export function parentNode(left: TreeNode, right: TreeNode, assets: readonly ReportAsset[]): TreeNode {
  const sums = left.sums.map((s, i) => s + right.sums[i]!);
  return { hash: sha256(`node:${left.hash}:${right.hash}:${texts(sums, assets).join(',')}`), sums };
}

/**
 * Checks a user's proof: their leaf, folded with each sibling, must give the root's hash and
 * sums, with no amount anywhere negative or malformed. Returns what is wrong, or null.
 */
export function proofProblem(proof: LiabilityProof): string | null {
  const { assets } = proof;
  const read = (amounts: readonly string[], what: string): bigint[] | string => {
    if (amounts.length !== assets.length) return `${what} has ${amounts.length} amounts for ${assets.length} assets`;
    const units = amounts.map((a, i) => amountUnits(a, assets[i]!.precision));
    const bad = units.indexOf(null);
    return bad >= 0 ? `${what}: ${JSON.stringify(amounts[bad])} is not a non-negative ${assets[bad]!.asset} amount with ${assets[bad]!.precision} decimals` : units as bigint[];
  };
  const balances = read(proof.leaf.balances, 'the leaf');
  if (typeof balances === 'string') return balances;
  let node = leafNode(proof.leaf.salt, balances, assets);
  for (const [i, step] of proof.path.entries()) {
    const sums = read(step.sums, `step ${i + 1}`);
    if (typeof sums === 'string') return sums;
    if (!/^[0-9a-f]{64}$/.test(step.hash)) return `step ${i + 1}: not a SHA-256 hash`;
    const sibling = { hash: step.hash, sums };
    node = step.side === 'left' ? parentNode(sibling, node, assets) : parentNode(node, sibling, assets);
  }
  if (node.hash !== proof.root.hash) return 'the path does not lead to the root hash';
  const rootSums = read(proof.root.sums, 'the root');
  if (typeof rootSums === 'string') return rootSums;
  if (rootSums.some((s, i) => s !== node.sums[i])) return "the root's sums are not the sums the path gives";
  return null;
}
