import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { bytesFromName, joinBytes, nameFromBytes } from '../../src/core/files/pathCodec';

/** Small deterministic PRNG, so a failing case can be replayed from the printed seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// Pieces that sit on the edges of UTF-8 validity, mixed with random bytes so that both the
// valid and the escaped paths get exercised (uniformly random bytes are almost never valid).
const FRAGMENTS: readonly number[][] = [
  [0x41], [0x2f], [0x00], [0xc3, 0xa9], [0xc3], [0xa9], [0xe2, 0x82, 0xac], [0xe2, 0x82], [0xf0, 0x9f, 0x98, 0x80], [0xf0, 0x9f, 0x98],
  [0xed, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xb3, 0xbf], [0xee, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80],
  [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xe0, 0xa0, 0x80], [0xf0, 0x80, 0x80, 0x80], [0xf5], [0xff], [0xfe], [0x80], [0xbf],
];

function randomBytes(random: () => number): Buffer {
  const parts: Buffer[] = [];
  const count = Math.floor(random() * 10);
  for (let index = 0; index < count; index += 1) {
    if (random() < 0.5) {
      parts.push(Buffer.from(FRAGMENTS[Math.floor(random() * FRAGMENTS.length)]!));
    } else {
      parts.push(Buffer.from(Array.from({ length: Math.floor(random() * 4) }, () => Math.floor(random() * 256))));
    }
  }
  return Buffer.concat(parts);
}

describe('unit: pathCodec', () => {
  describe('nameFromBytes / bytesFromName', () => {
    it('round-trips every byte sequence (property test, 20,000 random cases)', () => {
      const seed = 20_240_601;
      const random = prng(seed);
      let escaped = 0;
      for (let run = 0; run < 20_000; run += 1) {
        const bytes = randomBytes(random);
        const name = nameFromBytes(bytes);
        assert.deepEqual(bytesFromName(name), bytes, `seed ${seed}, run ${run}: ${bytes.toString('hex')}`);
        // Through our JSON state and protocol, too.
        assert.deepEqual(bytesFromName(JSON.parse(JSON.stringify(name)) as string), bytes);
        if (isUtf8(bytes)) assert.equal(name, bytes.toString('utf8'));
        else escaped += 1;
      }
      assert.ok(escaped > 1_000 && escaped < 19_000, `both kinds were generated (${escaped} escaped)`);
    });

    it('round-trips every single byte and every byte pair', () => {
      for (let first = 0; first < 256; first += 1) {
        for (let second = 0; second < 256; second += 1) {
          const bytes = Buffer.of(first, second);
          assert.deepEqual(bytesFromName(nameFromBytes(bytes)), bytes);
        }
        assert.deepEqual(bytesFromName(nameFromBytes(Buffer.of(first))), Buffer.of(first));
      }
    });

    it('gives the ordinary string for valid UTF-8, including astral characters and U+FFFD', () => {
      for (const text of ['', 'plain.txt', 'with space', 'new\nline', 'café', '日本語', '😀.md', '\uFFFD', 'a\u0000b']) {
        assert.equal(nameFromBytes(Buffer.from(text, 'utf8')), text);
        assert.deepEqual(bytesFromName(text), Buffer.from(text, 'utf8'));
      }
    });

    it('maps each byte of an invalid sequence to U+DC00 + byte, as Python surrogateescape does', () => {
      assert.equal(nameFromBytes(Buffer.from([0x66, 0xff, 0x6f])), 'f\udcffo');
      // Latin-1 "café": the lone 0xE9 is not UTF-8.
      assert.equal(nameFromBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9])), 'caf\udce9');
      // Truncated 3-byte sequence followed by ASCII: both bytes escaped, the ASCII kept.
      assert.equal(nameFromBytes(Buffer.from([0xe2, 0x82, 0x41])), '\udce2\udc82A');
      // Overlong "/" and an encoded surrogate are invalid in strict UTF-8.
      assert.equal(nameFromBytes(Buffer.from([0xc0, 0xaf])), '\udcc0\udcaf');
      assert.equal(nameFromBytes(Buffer.from([0xed, 0xb2, 0x80])), '\udced\udcb2\udc80');
      // Above U+10FFFF.
      assert.equal(nameFromBytes(Buffer.from([0xf4, 0x90, 0x80, 0x80])), '\udcf4\udc90\udc80\udc80');
      // Valid text around an invalid byte stays readable.
      assert.equal(nameFromBytes(Buffer.from([0xc3, 0xa9, 0xff, 0xc3, 0xa9])), 'é\udcffé');
    });

    it('keeps lone surrogates as \\udcXX escapes in JSON', () => {
      assert.equal(JSON.stringify(nameFromBytes(Buffer.from([0x61, 0xff]))), '"a\\udcff"');
    });

    it('refuses a lone surrogate that stands for no byte', () => {
      assert.throws(() => bytesFromName('a\ud800b'), /lone surrogate U\+D800/);
      assert.throws(() => bytesFromName('\udc41'), /lone surrogate U\+DC41/);
      assert.throws(() => bytesFromName('x\udbff'), /lone surrogate/);
    });
  });

  describe('joinBytes', () => {
    it('joins a root and a relative path into fs bytes', () => {
      assert.deepEqual(joinBytes('/host', 'a/b c.txt'), Buffer.from('/host/a/b c.txt'));
      assert.deepEqual(joinBytes('/host/', 'a'), Buffer.from('/host/a'));
      assert.deepEqual(joinBytes(Buffer.from('/host'), 'f\udcffo'), Buffer.from([...Buffer.from('/host/f'), 0xff, 0x6f]));
      assert.deepEqual(joinBytes(Buffer.from([0x2f, 0xfe]), 'a'), Buffer.from([0x2f, 0xfe, 0x2f, 0x61]));
      // Dots that are part of a name are names.
      for (const good of ['.a', 'a.', '...', 'a/..b/c', 'a/b../.c', '.git/HEAD']) assert.deepEqual(joinBytes('/host', good), Buffer.from(`/host/${good}`), good);
    });

    it('gives the root itself for ""', () => {
      assert.deepEqual(joinBytes('/host', ''), Buffer.from('/host'));
    });

    it('refuses paths that are not snapshot keys, so nothing can point outside the root', () => {
      for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a/..', './a', 'a//b', 'a/', '.', '..', '/', '//', 'a/./b', 'a/.', 'a/b/../c']) {
        assert.throws(() => joinBytes('/host', bad), /not a relative sync path/, bad);
      }
    });
  });
});
