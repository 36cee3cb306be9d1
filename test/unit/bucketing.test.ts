import { BUCKETS, bucketOf, bucketRanges, chooseVersionIndex, murmur3_32, murmur3_32Bytes, versionIndexForBucket } from '../../src/gateway/bucketing';

describe('murmur3_32', () => {
  // Reference values of MurmurHash3_x86_32 (Austin Appleby's smhasher), UTF-8 input.
  const vectors: Array<[string, number, number]> = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['aa', 0x9747b28c, 0x5d211726],
    ['aaa', 0x9747b28c, 0x283e0130],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abcd', 0x9747b28c, 0xf0478627],
    ['abc', 0, 0xb3dd93fa],
    ['hello', 0, 0x248bfa47],
    ['test', 0, 0xba6bd213],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ];
  it.each(vectors)('murmur3_32(%j, %d)', (text, seed, expected) => {
    expect(murmur3_32(text, seed)).toBe(expected);
  });

  it('hashes non-ASCII text as its UTF-8 bytes', () => {
    for (const text of ['π', 'héllo', '日本語のキー', 'emoji 🙂 key', 'abc\u00e9']) {
      // Same bytes, hashed through the byte path, must agree with the string path.
      expect(murmur3_32(text, 7)).toBe(murmur3_32Bytes(Buffer.from(text, 'utf8'), 7));
    }
    expect(murmur3_32('\u00e9')).not.toBe(murmur3_32('\u00e8'));
  });

  it('returns unsigned 32-bit integers', () => {
    for (let i = 0; i < 1000; i++) {
      const h = murmur3_32(`key-${i}`);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });
});

describe('bucketing', () => {
  const keys = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);

  it('is salt:key hashed into 10,000 buckets', () => {
    expect(bucketOf('chat', 'u1')).toBe(murmur3_32('chat:u1') % BUCKETS);
    expect(bucketOf('chat', 'u1')).toBe(bucketOf('chat', 'u1'));
  });

  it('puts the candidate on buckets below weight × 100 (two versions)', () => {
    const ranges = bucketRanges([90, 10]);
    expect(ranges).toEqual([
      { from: 1000, to: 10000 },
      { from: 0, to: 1000 },
    ]);
    expect(versionIndexForBucket(ranges, 999)).toBe(1);
    expect(versionIndexForBucket(ranges, 1000)).toBe(0);
    expect(bucketRanges([87.5, 12.5])[1]).toEqual({ from: 0, to: 1250 });
    expect(bucketRanges([100, 0])[1]).toEqual({ from: 0, to: 0 });
    expect(bucketRanges([0, 100])[0]).toEqual({ from: 10000, to: 10000 });
  });

  it.each([1, 5, 10, 25, 50, 90, 99])('sends %d%% of 100k keys to the candidate (within 1%%)', (weight) => {
    const ranges = bucketRanges([100 - weight, weight]);
    let candidate = 0;
    for (const key of keys) if (chooseVersionIndex(ranges, 'chat', key) === 1) candidate++;
    expect(Math.abs((candidate / keys.length) * 100 - weight)).toBeLessThan(1);
  });

  it('spreads three versions by their weights', () => {
    const ranges = bucketRanges([50, 30, 20]);
    const counts = [0, 0, 0];
    for (const key of keys) counts[chooseVersionIndex(ranges, 'chat', key)]!++;
    expect(counts.map((n) => Math.round((n / keys.length) * 100))).toEqual([50, 30, 20]);
  });

  it('is monotonic: a key on the candidate at weight w stays there at every higher weight', () => {
    const weights = [0, 1, 2, 5, 10, 12.5, 20, 33, 50, 75, 99, 100];
    const buckets = new Map(keys.map((key) => [key, bucketOf('chat', key)]));
    let previous = new Set<string>();
    for (const weight of weights) {
      const ranges = bucketRanges([100 - weight, weight]);
      const current = new Set(keys.filter((key) => versionIndexForBucket(ranges, buckets.get(key)!) === 1));
      const movedBack = [...previous].filter((key) => !current.has(key));
      expect({ weight, movedBack }).toEqual({ weight, movedBack: [] });
      previous = current;
    }
    expect(previous.size).toBe(keys.length);
  });

  it('depends on the salt', () => {
    const ranges = bucketRanges([50, 50]);
    const a = keys.slice(0, 1000).map((k) => chooseVersionIndex(ranges, 'salt-a', k));
    const b = keys.slice(0, 1000).map((k) => chooseVersionIndex(ranges, 'salt-b', k));
    const differ = a.filter((v, i) => v !== b[i]).length;
    expect(differ).toBeGreaterThan(300);
  });

  it('draws at random without a key, by the weights', () => {
    const ranges = bucketRanges([70, 30]);
    let candidate = 0;
    for (let i = 0; i < 100_000; i++) if (chooseVersionIndex(ranges, 'chat', undefined) === 1) candidate++;
    expect(Math.abs(candidate / 1000 - 30)).toBeLessThan(1);
  });
});
