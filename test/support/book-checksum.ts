import { crc32 } from 'node:zlib';

/**
 * A book message's checksum as the README tells a client to compute it (written here rather than
 * imported from the server): CRC32 of the fields of the best 25 entries of each side, bid and ask
 * interleaved, joined by ':'. Entries are depth levels [price, quantity] or orders [id, price, quantity].
 */
export function clientChecksum(bids: readonly (readonly string[])[], asks: readonly (readonly string[])[]): number {
  const parts: string[] = [];
  for (let i = 0; i < 25; i++) {
    if (bids[i] !== undefined) parts.push(...bids[i]!);
    if (asks[i] !== undefined) parts.push(...asks[i]!);
  }
  return crc32(parts.join(':'));
}
