import assert from 'node:assert/strict';
import { demuxDockerStream } from '../../src/core/docker/demux';

/** One frame of Docker's multiplexed stream: type (1 stdout, 2 stderr), 3 zero bytes, length, payload. */
function frame(type: 0 | 1 | 2, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

const text = (result: { stdout: Buffer; stderr: Buffer }) => ({ stdout: result.stdout.toString('utf8'), stderr: result.stderr.toString('utf8') });

describe('unit: demux', () => {
  it('splits interleaved stdout and stderr frames, keeping each stream in order', () => {
    const buffer = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n'), frame(2, 'err 2\n'), frame(2, 'err 3\n')]);
    assert.deepEqual(text(demuxDockerStream(buffer)), { stdout: 'out 1\nout 2\n', stderr: 'err 1\nerr 2\nerr 3\n' });
  });

  it('reads on after a zero-length frame', () => {
    const buffer = Buffer.concat([frame(1, 'a'), frame(2, ''), frame(1, ''), frame(2, 'b'), frame(1, 'c')]);
    assert.deepEqual(text(demuxDockerStream(buffer)), { stdout: 'ac', stderr: 'b' });
  });

  it('keeps binary payloads and header-like bytes inside a payload intact', () => {
    const binary = Buffer.from([2, 0, 0, 0, 0, 0, 0, 9, 0xff, 0x00, 0x0a]);
    const result = demuxDockerStream(Buffer.concat([frame(1, binary), frame(2, 'x')]));
    assert.deepEqual(result.stdout, binary);
    assert.equal(result.stderr.toString(), 'x');
  });

  it('keeps a multi-byte character split across two frames of one stream', () => {
    const emoji = Buffer.from('😀', 'utf8');
    const buffer = Buffer.concat([frame(1, emoji.subarray(0, 2)), frame(2, 'e'), frame(1, emoji.subarray(2))]);
    assert.equal(demuxDockerStream(buffer).stdout.toString('utf8'), '😀');
  });

  it('ignores a trailing partial header', () => {
    const buffer = Buffer.concat([frame(1, 'complete'), frame(2, 'next').subarray(0, 5)]);
    assert.deepEqual(text(demuxDockerStream(buffer)), { stdout: 'complete', stderr: '' });
  });

  // Regression: a trailing frame whose payload is cut short used to be delivered in part.
  it('ignores a trailing frame whose payload is cut short', () => {
    const buffer = Buffer.concat([frame(1, 'complete'), frame(2, 'partial payload').subarray(0, 12)]);
    assert.deepEqual(text(demuxDockerStream(buffer)), { stdout: 'complete', stderr: '' });
  });

  it('gives two empty streams for an empty buffer', () => {
    assert.deepEqual(text(demuxDockerStream(Buffer.alloc(0))), { stdout: '', stderr: '' });
  });
});
