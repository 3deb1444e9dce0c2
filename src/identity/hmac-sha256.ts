/**
 * HMAC-SHA256 (RFC 2104) for one key, built on Node's one-shot `crypto.hash`: the key's two pads
 * are computed once, and each message costs two native hash calls and no object. `createHmac`
 * builds a stream-backed object with a native handle per call, which on the order path cost
 * more than the hashing itself (measured in bench:api; see docs/performance-log.md).
 */
import { hash } from 'node:crypto';

const BLOCK = 64;
const DIGEST = 32;

export class HmacSha256 {
  /** ipad-masked key, then room for the message. */
  private inner: Buffer;
  /** opad-masked key, then the inner digest. */
  private readonly outer = Buffer.alloc(BLOCK + DIGEST);

  constructor(key: Buffer) {
    const block = Buffer.alloc(BLOCK);
    (key.length > BLOCK ? hash('sha256', key, 'buffer') : key).copy(block);
    this.inner = Buffer.alloc(BLOCK + 1024);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = block[i]! ^ 0x36;
      this.outer[i] = block[i]! ^ 0x5c;
    }
  }

  digest(message: string): Buffer {
    const length = Buffer.byteLength(message, 'utf8');
    if (BLOCK + length > this.inner.length) {
      const grown = Buffer.alloc(BLOCK + length);
      this.inner.copy(grown, 0, 0, BLOCK);
      this.inner = grown;
    }
    this.inner.write(message, BLOCK, 'utf8');
    hash('sha256', this.inner.subarray(0, BLOCK + length), 'buffer').copy(this.outer, BLOCK);
    return hash('sha256', this.outer, 'buffer');
  }
}
