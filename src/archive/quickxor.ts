/**
 * Microsoft's QuickXorHash, the hash OneDrive reports as `file.hashes.quickXorHash` (the only
 * hash both OneDrive Personal and OneDrive for Business return). Definition: a 160-bit register;
 * byte number i of the input (0-based) is XORed into the register at bit offset (11 × i) mod 160,
 * wrapping around the 160 bits; at the end the 64-bit input length, little-endian, is XORed into
 * the last 8 of the register's 20 bytes. The digest is the 20 bytes, little-endian, in base64.
 *
 * Why it can be fast: 160 × 11 ≡ 0 (mod 160), so bytes 160 apart land on the same offset. XORing
 * the input into 160 byte lanes (lane = position mod 160) and placing each lane's byte once at the
 * end gives the same result. The lanes fold as 40 32-bit words, so the hot loop is word XORs.
 */

/** Bytes per lane cycle: after 160 bytes the bit offsets repeat. */
const LANES = 160;
const WORDS = LANES / 4;
/** Scratch for unaligned input (an Int32Array view needs a 4-byte-aligned offset). */
const SCRATCH_BYTES = 400 * LANES;
/** Words folded per window: 400 blocks, 64,000 bytes, well inside an L2 cache. */
const WINDOW_WORDS = 400 * WORDS;

/**
 * An incremental QuickXorHash. The digest depends only on the bytes fed, never on how they were
 * split across `update()` calls. `digest()` does not change the state: more bytes may follow and
 * `digest()` may be asked again (it then covers everything fed so far).
 */
export class QuickXorHasher {
  readonly #lanes = new Uint8Array(LANES);
  readonly #words = new Int32Array(this.#lanes.buffer);
  /** Total bytes fed; a double is exact up to 2^53, far past any file. */
  #length = 0;
  #scratch: Uint8Array | null = null;

  /** Feeds bytes; returns the hasher so calls can be chained. */
  update(buf: Buffer | Uint8Array): this {
    const n = buf.length;
    const lanes = this.#lanes;
    let pos = this.#length % LANES;
    let i = 0;
    // Head: bytes until the stream position is back at lane 0.
    while (i < n && pos !== 0) {
      lanes[pos]! ^= buf[i]!;
      i++;
      pos = pos + 1 === LANES ? 0 : pos + 1;
    }
    const blocks = Math.floor((n - i) / LANES);
    if (blocks > 0) {
      const start = buf.byteOffset + i;
      if (start % 4 === 0) {
        this.#fold(new Int32Array(buf.buffer, start, blocks * WORDS));
      } else {
        // Copying to an aligned buffer (memcpy speed) beats reading unaligned words one by one.
        const scratch = (this.#scratch ??= new Uint8Array(SCRATCH_BYTES));
        const scratchWords = new Int32Array(scratch.buffer);
        let left = blocks * LANES;
        let at = i;
        while (left > 0) {
          const take = Math.min(left, SCRATCH_BYTES);
          scratch.set(buf.subarray(at, at + take));
          this.#fold(take === SCRATCH_BYTES ? scratchWords : scratchWords.subarray(0, take / 4));
          at += take;
          left -= take;
        }
      }
      i += blocks * LANES;
    }
    // Tail: fewer than 160 bytes, starting at lane 0.
    for (let k = 0; i < n; i++, k++) lanes[k]! ^= buf[i]!;
    this.#length += n;
    return this;
  }

  /**
   * XORs whole 160-byte blocks (40 words each) into the lanes. Int32 views keep every value a
   * small integer for the JIT (Uint32 values past 2^31 become doubles). Eight lanes at a time fit
   * in registers; the window keeps the five passes over the input inside the CPU cache.
   */
  #fold(w: Int32Array): void {
    const acc = this.#words;
    for (let base = 0; base < w.length; base += WINDOW_WORDS) {
      const end = Math.min(w.length, base + WINDOW_WORDS);
      for (let g = 0; g < WORDS; g += 8) {
        let a0 = acc[g]!, a1 = acc[g + 1]!, a2 = acc[g + 2]!, a3 = acc[g + 3]!;
        let a4 = acc[g + 4]!, a5 = acc[g + 5]!, a6 = acc[g + 6]!, a7 = acc[g + 7]!;
        for (let j = base + g; j < end; j += WORDS) {
          a0 ^= w[j]!; a1 ^= w[j + 1]!; a2 ^= w[j + 2]!; a3 ^= w[j + 3]!;
          a4 ^= w[j + 4]!; a5 ^= w[j + 5]!; a6 ^= w[j + 6]!; a7 ^= w[j + 7]!;
        }
        acc[g] = a0; acc[g + 1] = a1; acc[g + 2] = a2; acc[g + 3] = a3;
        acc[g + 4] = a4; acc[g + 5] = a5; acc[g + 6] = a6; acc[g + 7] = a7;
      }
    }
  }

  /** Bytes fed so far. */
  get length(): number {
    return this.#length;
  }

  /** The 20 raw digest bytes of everything fed so far. */
  digestBytes(): Buffer {
    const out = Buffer.alloc(20);
    const lanes = this.#lanes;
    for (let lane = 0; lane < LANES; lane++) {
      const v = lanes[lane]!;
      if (v === 0) continue;
      const bit = (lane * 11) % LANES;
      const byte = bit >>> 3;
      const shift = bit & 7;
      const wide = v << shift;
      out[byte]! ^= wide & 0xff;
      // The byte straddles two register bytes; the register wraps from byte 19 to byte 0.
      if (shift !== 0) out[byte === 19 ? 0 : byte + 1]! ^= wide >>> 8;
    }
    xorLength(out, this.#length);
    return out;
  }

  /** The digest as OneDrive reports it: base64 of the 20 bytes (28 characters). */
  digest(): string {
    return this.digestBytes().toString('base64');
  }
}

/** The QuickXorHash (base64) of one buffer. */
export function quickXorHash(buf: Buffer | Uint8Array): string {
  return new QuickXorHasher().update(buf).digest();
}

/**
 * XORs a 64-bit little-endian length into the last 8 bytes of a 20-byte digest (bytes 12..19),
 * the final step of QuickXorHash. Exported for tests: lengths past 2^32 cannot be fed cheaply.
 */
export function xorLength(out: Buffer, length: number): void {
  const lo = length % 0x1_0000_0000;
  const hi = Math.floor(length / 0x1_0000_0000);
  out.writeUInt32LE((out.readUInt32LE(12) ^ lo) >>> 0, 12);
  out.writeUInt32LE((out.readUInt32LE(16) ^ hi) >>> 0, 16);
}
