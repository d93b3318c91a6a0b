/**
 * Splits Docker's multiplexed stdout/stderr format (non-TTY logs and attach): frames of an 8-byte
 * header (stream type, 3 zero bytes, big-endian length) followed by that many bytes.
 */
export function demuxDockerStream(buffer: Buffer): { stdout: Buffer; stderr: Buffer } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    if (offset + 8 + length > buffer.length) break; // a frame cut short is not returned in part
    const payload = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 2) stderr.push(payload);
    else stdout.push(payload);
    offset += 8 + length;
  }
  return { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
}
