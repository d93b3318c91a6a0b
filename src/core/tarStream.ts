// The tar format, as far as the initial copy writes it (src/agent/initialCopy.ts): the agent
// streams the scanned tree as an archive into GNU tar, which unpacks it in /workspace as the
// workspace user. Pure: headers as bytes, no I/O.
//
// Each member is a POSIX ustar header, preceded where needed by a GNU long-name ('L') or
// long-link ('K') member, which carry names as raw bytes (a name here may be any bytes, see
// pathCodec), and by a pax header ('x') holding only the modification time to the nanosecond.
// ustar has no room for fractions of a second, and the first agreed state inherits a file's hash
// only where /workspace shows the time the scan saw.

export const TAR_BLOCK = 512;
/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

export type TarMember =
  | { kind: 'file'; path: Buffer; mode: number; mtimeMs: number; size: number }
  | { kind: 'directory'; path: Buffer; mode: number; mtimeMs: number }
  | { kind: 'symlink'; path: Buffer; target: Buffer; mtimeMs: number };

const TYPE_FLAG = { file: '0', directory: '5', symlink: '2' } as const;
const NAME_FIELD = 100;
/** The largest size the 11 octal digits of ustar hold; bigger ones use GNU's base-256 form. */
const MAX_OCTAL_SIZE = 0o77777777777;

/** The header blocks of one member (its content, if a file, follows, padded by tarPadding). */
export function tarHeader(member: TarMember): Buffer {
  return tarMember(member);
}

/**
 * A whole member in one buffer: its header blocks and, for a file whose bytes are given, the
 * content and its padding.
 */
export function tarMember(member: TarMember, content?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(tarMemberMaxBytes(member, content));
  return out.subarray(0, writeTarMember(out, 0, member, content));
}

/** At least the bytes writeTarMember writes for this member: room to reserve before writing it. */
export function tarMemberMaxBytes(member: TarMember, content?: Buffer): number {
  const target = member.kind === 'symlink' ? member.target.length : 0;
  // Header, long-name, long-link and pax members' headers; their data; the content.
  return 4 * TAR_BLOCK + padded(member.path.length + 1) + padded(target + 1) + PAX_MAX_BYTES + (content ? padded(content.length) : 0);
}

/**
 * Writes the member at `at` in `out`, as tarMember returns it, and returns its length: the
 * initial copy makes one member per file of the tree and gathers them in one buffer, with no
 * buffer of their own. `out` need not be zeroed.
 */
export function writeTarMember(out: Buffer, at: number, member: TarMember, content?: Buffer): number {
  const start = at;
  const name = member.path;
  const target = member.kind === 'symlink' ? member.target : undefined;
  if (name.length > NAME_FIELD) at = writeLongName(out, at, name, 'L');
  if (target && target.length > NAME_FIELD) at = writeLongName(out, at, target, 'K');
  at = writePaxTime(out, at, member.mtimeMs);
  writeUstarHeader(out, at, {
    name: name.subarray(0, NAME_FIELD),
    mode: member.kind === 'symlink' ? 0o777 : member.mode & 0o777,
    size: member.kind === 'file' ? member.size : 0,
    mtime: Math.max(0, Math.floor(member.mtimeMs / 1000)),
    type: TYPE_FLAG[member.kind],
    linkName: target?.subarray(0, NAME_FIELD),
  });
  at += TAR_BLOCK;
  if (content) at = writePadded(out, at, content);
  return at - start;
}

/** A GNU long-name ('L') or long-link ('K') member: the next header's name or link, NUL-terminated. */
function writeLongName(out: Buffer, at: number, name: Buffer, type: 'L' | 'K'): number {
  writeUstarHeader(out, at, { name: LONG_LINK_NAME, mode: 0, mtime: 0, type, size: name.length + 1 });
  const data = at + TAR_BLOCK;
  const end = data + padded(name.length + 1);
  out.fill(0, data + name.copy(out, data), end);
  return end;
}

/**
 * A pax extended header ('x') with one record, "LENGTH mtime=TIME\n", LENGTH counting itself.
 * One is written a member: its header block differs only by the record's length, so each length's
 * block is made once (PAX_HEADERS), and the record goes straight into `out`.
 */
function writePaxTime(out: Buffer, at: number, mtimeMs: number): number {
  const record = paxRecord(`mtime=${paxTime(mtimeMs)}`);
  let header = PAX_HEADERS.get(record.length);
  if (!header) {
    header = Buffer.alloc(TAR_BLOCK);
    writeUstarHeader(header, 0, { name: PAX_HEADER_NAME, mode: 0o644, mtime: 0, type: 'x', size: record.length });
    PAX_HEADERS.set(record.length, header);
  }
  header.copy(out, at);
  const data = at + TAR_BLOCK;
  const end = data + padded(record.length);
  out.fill(0, data + out.write(record, data, 'latin1'), end);
  return end;
}

/** The pax header block of each record length met so far (a few: a time's record is 30 bytes until 2286). */
const PAX_HEADERS = new Map<number, Buffer>();

/** Copies `data` to `at` and zeros the rest of its last block; returns where the next block starts. */
function writePadded(out: Buffer, at: number, data: Buffer): number {
  const end = at + padded(data.length);
  out.fill(0, at + data.copy(out, at), end);
  return end;
}

/** The longest pax member's data: "NN mtime=" and a time of up to 20 digits, a dot, 9 decimals and a newline. */
const PAX_MAX_BYTES = TAR_BLOCK;

/** `length` rounded up to whole blocks. */
const padded = (length: number): number => Math.ceil(length / TAR_BLOCK) * TAR_BLOCK;
const LONG_LINK_NAME = Buffer.from('././@LongLink');
const PAX_HEADER_NAME = Buffer.from('././@PaxHeader');

/** Zeros that fill a file's last block. */
export function tarPadding(size: number): Buffer {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(TAR_BLOCK - rest);
}

/** Seconds since the epoch with nine decimals, as pax writes times (a time before 1970: whole seconds). */
export function paxTime(mtimeMs: number): string {
  if (!(mtimeMs >= 0)) return String(Math.floor(mtimeMs / 1000));
  let seconds = Math.floor(mtimeMs / 1000);
  let nanoseconds = Math.round((mtimeMs - seconds * 1000) * 1e6);
  if (nanoseconds >= 1e9) {
    seconds += 1;
    nanoseconds -= 1e9;
  }
  return `${seconds}.${String(nanoseconds).padStart(9, '0')}`;
}

interface UstarFields { name: Buffer; mode: number; size: number; mtime: number; type: string; linkName?: Buffer }

/**
 * The bytes every header shares: uid and gid zero (the receiver is not root and keeps its own),
 * the ustar magic and version, and the checksum field as spaces while the sum is taken. A member
 * per file of the tree: the fields are written as bytes, without a string each.
 */
const TEMPLATE = (() => {
  const block = Buffer.alloc(TAR_BLOCK);
  block.write('0000000\u0000', 108, 'latin1');
  block.write('0000000\u0000', 116, 'latin1');
  block.write('ustar\u000000', 257, 'latin1');
  block.fill(0x20, 148, 156);
  return block;
})();

/** The sum of the template's bytes, checksum field as spaces: each header adds its fields' bytes. */
const TEMPLATE_SUM = byteSum(TEMPLATE, 0, TAR_BLOCK);

/** Writes a ustar header into the block of `out` at `at`. */
function writeUstarHeader(out: Buffer, at: number, fields: UstarFields): void {
  TEMPLATE.copy(out, at);
  fields.name.copy(out, at);
  // The checksum is the sum of the header's bytes with its own field read as spaces.
  let sum = TEMPLATE_SUM + byteSum(fields.name, 0, fields.name.length) + writeOctal(out, at + 100, 8, fields.mode);
  sum += fields.size > MAX_OCTAL_SIZE ? writeBase256(out, at + 124, 12, fields.size) : writeOctal(out, at + 124, 12, fields.size);
  sum += writeOctal(out, at + 136, 12, fields.mtime);
  out[at + 156] = fields.type.charCodeAt(0);
  sum += out[at + 156]!;
  if (fields.linkName) sum += byteSum(fields.linkName, 0, fields.linkName.copy(out, at + 157));
  writeOctal(out, at + 148, 7, sum);
  out[at + 155] = 0x20;
}

function byteSum(bytes: Buffer, from: number, to: number): number {
  let sum = 0;
  for (let index = from; index < to; index += 1) sum += bytes[index]!;
  return sum;
}

/** One pax record, "LENGTH key=value\n", LENGTH counting itself (latin1: the value is ASCII). */
function paxRecord(keyValue: string): string {
  const body = ` ${keyValue}\n`;
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return `${length}${body}`;
}

/** `width - 1` octal digits, zero-padded, and a NUL; returns the sum of the bytes written. */
function writeOctal(header: Buffer, offset: number, width: number, value: number): number {
  let rest = Math.trunc(value);
  let sum = 0;
  header[offset + width - 1] = 0;
  for (let index = offset + width - 2; index >= offset; index -= 1) {
    const digit = 0x30 + (rest % 8);
    header[index] = digit;
    sum += digit;
    rest = Math.floor(rest / 8);
  }
  return sum;
}

/** GNU's base-256 number: the first byte's high bit set, then the value big-endian; returns the sum of the bytes written. */
function writeBase256(header: Buffer, offset: number, width: number, value: number): number {
  let rest = BigInt(Math.trunc(value));
  for (let index = offset + width - 1; index > offset; index -= 1) {
    header[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  header[offset] = 0x80;
  return byteSum(header, offset, offset + width);
}
