/**
 * Address derivation from an operator's extended public key, and destination validation, per
 * network. Private keys never come near the exchange: only xpub/zpub strings are configured.
 *
 * - bitcoin: BIP84 (native SegWit, bech32 "bc1q…"), receiving chain m/…/0/i below the account
 *   key; a zpub or an xpub of the account level is accepted. Destinations: any mainnet
 *   address form with a valid checksum (base58check or bech32/bech32m).
 * - ethereum: m/…/0/i below an xpub of the account level (m/44'/60'/0'); addresses carry the
 *   EIP-55 mixed-case checksum. Destinations: all-lowercase, all-uppercase, or a valid EIP-55.
 * - ripple: one shared address; users are told apart by the destination tag (XRP `dt`).
 * - stellar: one shared account (StrKey "G…", CRC16-XModem checksum); users by `memoId`.
 * - nem: one shared address (NIS1 base32 "N…", Keccak checksum); users by the `message` text.
 *   The two checksums are written here (a few lines each) rather than pulling in either
 *   chain's whole SDK.
 */
import { HDKey } from '@scure/bip32';
import * as btc from '@scure/btc-signer';
import { base32, base58xrp } from '@scure/base';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';

export const NETWORKS = ['bitcoin', 'ethereum', 'ripple', 'stellar', 'nem'] as const;
export type Network = (typeof NETWORKS)[number];
export const TAG_KINDS = ['dt', 'memoId', 'message'] as const;
export type TagKind = (typeof TAG_KINDS)[number];

/** SLIP-132 version bytes of zpub (BIP84 mainnet, public). */
const ZPUB_VERSIONS = { private: 0x04b2430c, public: 0x04b24746 };

export function parseExtendedKey(extended: string): HDKey {
  const key = HDKey.fromExtendedKey(extended, extended.startsWith('zpub') ? ZPUB_VERSIONS : undefined);
  if (key.privateKey !== null) throw new Error('configure an extended PUBLIC key: private keys never live in the exchange');
  return key;
}

export function bitcoinAddress(account: HDKey, index: number): string {
  const child = account.deriveChild(0).deriveChild(index);
  return btc.p2wpkh(child.publicKey!).address!;
}

export function ethereumAddress(account: HDKey, index: number): string {
  const child = account.deriveChild(0).deriveChild(index);
  const uncompressed = secp256k1.Point.fromBytes(child.publicKey!).toBytes(false);
  const hex = Buffer.from(keccak_256(uncompressed.subarray(1)).subarray(-20)).toString('hex');
  return toChecksumAddress(hex);
}

/** EIP-55: a hex digit is upper case where the keccak of the lower-case address has a nibble ≥ 8. */
export function toChecksumAddress(hex40: string): string {
  const lower = hex40.toLowerCase();
  const digest = Buffer.from(keccak_256(new TextEncoder().encode(lower))).toString('hex');
  let out = '0x';
  for (let i = 0; i < 40; i++) out += parseInt(digest[i]!, 16) >= 8 ? lower[i]!.toUpperCase() : lower[i]!;
  return out;
}

/** Why `address` cannot receive on `network`, or null when it can. */
export function addressProblem(network: Network, address: string): string | null {
  if (address.length === 0 || address.length > 128) return 'address is empty or too long';
  switch (network) {
    case 'bitcoin':
      try {
        btc.Address(btc.NETWORK).decode(address);
        return null;
      } catch (error) {
        return `not a valid Bitcoin address (${(error as Error).message})`;
      }
    case 'ethereum': {
      if (!/^0x[0-9a-fA-F]{40}$/.test(address)) return 'an Ethereum address is 0x followed by 40 hex digits';
      const body = address.slice(2);
      if (body === body.toLowerCase() || body === body.toUpperCase()) return null;
      return toChecksumAddress(body) === address ? null : 'Ethereum address checksum (EIP-55) does not match';
    }
    case 'ripple':
      return rippleProblem(address);
    case 'stellar':
      return stellarProblem(address);
    case 'nem':
      return nemProblem(address);
  }
}

function decodeBase32(text: string, length: number): Uint8Array | null {
  try {
    const bytes = base32.decode(text);
    return bytes.length === length ? bytes : null;
  } catch {
    return null;
  }
}

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), as Stellar's StrKey uses. */
function crc16xmodem(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function stellarProblem(address: string): string | null {
  const bytes = /^G[A-Z2-7]{55}$/.test(address) ? decodeBase32(address, 35) : null;
  // Version byte 6 << 3 (an account id), 32 key bytes, the CRC little-endian.
  if (bytes === null || bytes[0] !== 6 << 3) return 'not a valid Stellar account id (G…, 56 characters)';
  const crc = crc16xmodem(bytes.subarray(0, 33));
  return bytes[33] === (crc & 0xff) && bytes[34] === crc >> 8 ? null : 'Stellar account id checksum does not match';
}

/** A NIS1 mainnet address from a public key: 0x68, RIPEMD-160(Keccak-256(key)), 4 checksum bytes. */
export function nemAddress(publicKey: Uint8Array): string {
  const body = new Uint8Array(25);
  body[0] = 0x68;
  body.set(ripemd160(keccak_256(publicKey)), 1);
  body.set(keccak_256(body.subarray(0, 21)).subarray(0, 4), 21);
  return base32.encode(body);
}

function nemProblem(address: string): string | null {
  const plain = address.replace(/-/g, '').toUpperCase();
  const bytes = /^N[A-Z2-7]{39}$/.test(plain) ? decodeBase32(plain, 25) : null;
  if (bytes === null || bytes[0] !== 0x68) return 'not a valid NEM mainnet address (N…, 40 characters)';
  const check = keccak_256(bytes.subarray(0, 21)).subarray(0, 4);
  return Buffer.from(check).equals(Buffer.from(bytes.subarray(21))) ? null : 'NEM address checksum does not match';
}

function rippleProblem(address: string): string | null {
  let bytes: Uint8Array;
  try {
    bytes = base58xrp.decode(address);
  } catch {
    return 'not a valid XRP address (base58)';
  }
  if (bytes.length !== 25 || bytes[0] !== 0 || !address.startsWith('r')) return 'not a valid XRP classic address';
  const check = sha256(sha256(bytes.subarray(0, 21))).subarray(0, 4);
  return Buffer.from(check).equals(Buffer.from(bytes.subarray(21))) ? null : 'XRP address checksum does not match';
}

/** Why `tag` is not a valid tag of its kind, or null. XRP dt: uint32; XLM memoId: uint64; XEM message: text. */
export function tagProblem(kind: TagKind, tag: string): string | null {
  switch (kind) {
    case 'dt':
      return /^\d{1,10}$/.test(tag) && BigInt(tag) <= 0xffffffffn ? null : 'destination tag (dt) must be an integer 0..4294967295';
    case 'memoId':
      return /^\d{1,20}$/.test(tag) && BigInt(tag) <= 0xffffffffffffffffn ? null : 'memoId must be an integer 0..18446744073709551615';
    case 'message':
      return tag.length > 0 && Buffer.byteLength(tag) <= 1024 && !/[\u0000-\u001f]/.test(tag) ? null : 'message must be 1..1024 bytes of printable text';
  }
}
