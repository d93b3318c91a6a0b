import assert from 'node:assert/strict';
import { LineSplitter } from '../../src/core/jsonLines';
import type { LineEvent } from '../../src/core/jsonLines';

/** Feeds every chunk to one splitter and returns all events in order. */
function split(chunks: (string | Buffer)[], maxLineBytes?: number): LineEvent[] {
  const splitter = new LineSplitter(maxLineBytes);
  return chunks.flatMap((chunk) => splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk));
}

const lines = (...texts: string[]): LineEvent[] => texts.map((line) => ({ kind: 'line', line }));

describe('unit: jsonLines', () => {
  describe('LineSplitter', () => {
    const cases: { name: string; chunks: string[]; expected: LineEvent[] }[] = [
      { name: 'one line in one chunk', chunks: ['{"a":1}\n'], expected: lines('{"a":1}') },
      { name: 'a line split across chunks', chunks: ['{"a"', ':1', '}\n'], expected: lines('{"a":1}') },
      { name: 'several lines in one chunk', chunks: ['one\ntwo\nthree\n'], expected: lines('one', 'two', 'three') },
      { name: 'a chunk ending a line and starting the next', chunks: ['one\ntw', 'o\n'], expected: lines('one', 'two') },
      { name: 'CRLF line endings', chunks: ['one\r\ntwo\r', '\n'], expected: lines('one', 'two') },
      { name: 'blank and whitespace-only lines dropped', chunks: ['\n\none\n', '   \n\r\n', 'two\n\n'], expected: lines('one', 'two') },
      { name: 'no event for a line without its newline yet', chunks: ['partial', ' still'], expected: [] },
      { name: 'a newline-only chunk completing a line', chunks: ['done', '\n'], expected: lines('done') },
    ];
    for (const { name, chunks, expected } of cases) {
      it(name, () => {
        assert.deepEqual(split(chunks), expected);
      });
    }

    it('passes a line exactly at the limit', () => {
      assert.deepEqual(split(['12345678\n'], 8), lines('12345678'));
    });

    it('passes a line exactly at the limit that arrives in pieces', () => {
      assert.deepEqual(split(['1234', '5678', '\n'], 8), lines('12345678'));
    });

    it('reports a line one byte over the limit as one overflow and keeps the following line', () => {
      assert.deepEqual(split(['123456789\nnext\n'], 8), [{ kind: 'overflow', bytes: 9 }, ...lines('next')]);
    });

    it('reports an overflow spanning several chunks once, with its full size', () => {
      const events = split(['abcdefghij', 'klmnopqrst', 'uvwxyz', '0123\nafter\n'], 8);
      assert.deepEqual(events, [{ kind: 'overflow', bytes: 30 }, ...lines('after')]);
    });

    it('reports two separate over-long lines as two overflows', () => {
      assert.deepEqual(split(['aaaaaaaaaa\nok\nbbbbbbbbbbbb\n'], 8), [{ kind: 'overflow', bytes: 10 }, ...lines('ok'), { kind: 'overflow', bytes: 12 }]);
    });

    it('does not count an earlier line against the limit of the next', () => {
      assert.deepEqual(split(['1234567', '8\n1234', '5678\n'], 8), lines('12345678', '12345678'));
    });

    it('decodes multi-byte UTF-8 characters split across chunks', () => {
      const text = 'é ✓ 😀 日本';
      const bytes = Buffer.from(`${text}\n`, 'utf8');
      // One byte per chunk splits every multi-byte character.
      const chunks = [...bytes].map((byte) => Buffer.from([byte]));
      assert.deepEqual(split(chunks), lines(text));
    });

    it('decodes a 4-byte character split 1 + 3 and 3 + 1', () => {
      const emoji = Buffer.from('😀', 'utf8');
      assert.equal(emoji.length, 4);
      const chunks = [Buffer.from('a'), emoji.subarray(0, 1), Buffer.concat([emoji.subarray(1), Buffer.from('b\nc')]), emoji.subarray(0, 3), Buffer.concat([emoji.subarray(3), Buffer.from('\n')])];
      assert.deepEqual(split(chunks), lines('a😀b', 'c😀'));
    });

    it('measures the limit in bytes, not characters', () => {
      // Three characters, six bytes: over a limit of 5.
      assert.deepEqual(split(['ééé\nok\n'], 5), [{ kind: 'overflow', bytes: 6 }, ...lines('ok')]);
    });
  });
});
