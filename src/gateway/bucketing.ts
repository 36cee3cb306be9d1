/**
 * Sticky, monotonic traffic assignment. Pure functions, no I/O.
 *
 * A request key (the `x-canary-key` header) is hashed with the route's salt into one of
 * BUCKETS buckets: `bucket = murmur3_32(salt + ":" + key) % 10000`. The versions own
 * contiguous bucket ranges laid out **last version first**: with versions
 * [baseline, candidate], the candidate owns [0, candidateWeight × 100) and the baseline the
 * rest. Raising the candidate's weight only extends its range upward, so a key only ever
 * moves baseline → candidate, never back. In general, version i (counting from the end)
 * owns the cumulative range of the weights of the versions after it.
 */

export const BUCKETS = 10_000;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3 x86 32-bit over the UTF-8 bytes of `text`. Returns an unsigned 32-bit integer. */
export function murmur3_32(text: string, seed = 0): number {
  // Fast path for ASCII (typical keys): hash the char codes directly, no allocation.
  const length = text.length;
  const blocks = length & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return murmur3_32Bytes(Buffer.from(text, 'utf8'), seed);
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    for (let j = tail - 1; j >= 0; j--) {
      const code = text.charCodeAt(blocks + j);
      if (code > 0x7f) return murmur3_32Bytes(Buffer.from(text, 'utf8'), seed);
      k = (k << 8) | code;
    }
    h ^= scramble(k);
  }
  return fmix(h, length);
}

/** One 4-byte block folded into the running hash. */
export function mixBlock(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** murmur3's finalizer: avalanches the last bits; exported for other 32-bit mixing needs. */
export function fmix(hash: number, length: number): number {
  let h = hash ^ length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function murmur3_32Bytes(bytes: Uint8Array, seed = 0): number {
  const length = bytes.length;
  const blocks = length & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2]! << 16;
    if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    h ^= scramble(k);
  }
  return fmix(h, length);
}

/** The bucket (0..9999) of a key under a route's salt. */
export function bucketOf(salt: string, key: string): number {
  return murmur3_32(`${salt}:${key}`) % BUCKETS;
}

/** A uniformly random bucket, for requests without a key. */
export function randomBucket(): number {
  return Math.floor(Math.random() * BUCKETS);
}

/**
 * Upper bucket bounds (exclusive) per version, in version order, for a weight list (percent,
 * summing to 100). Laid out from the last version backwards: the last version owns
 * [0, w_last × 100), the one before it the next range, and so on; the first version (the
 * baseline) owns the top. Weights with more than two decimals are rounded to the bucket
 * resolution (0.01%).
 */
export interface BucketRange {
  from: number;
  to: number;
}

export function bucketRanges(weights: readonly number[]): BucketRange[] {
  const ranges: BucketRange[] = new Array(weights.length);
  let cumulative = 0;
  let from = 0;
  for (let i = weights.length - 1; i >= 0; i--) {
    cumulative += weights[i]!;
    const to = i === 0 ? BUCKETS : Math.min(BUCKETS, Math.round(cumulative * 100));
    ranges[i] = { from, to };
    from = to;
  }
  return ranges;
}

/** The index of the version whose range holds `bucket`. */
export function versionIndexForBucket(ranges: readonly BucketRange[], bucket: number): number {
  for (let i = ranges.length - 1; i >= 0; i--) {
    const range = ranges[i]!;
    if (bucket >= range.from && bucket < range.to) return i;
  }
  return 0;
}

/** Convenience: which version index a key (or, without one, a random draw) lands on. */
export function chooseVersionIndex(ranges: readonly BucketRange[], salt: string, key: string | undefined): number {
  const bucket = key === undefined || key === '' ? randomBucket() : bucketOf(salt, key);
  return versionIndexForBucket(ranges, bucket);
}
