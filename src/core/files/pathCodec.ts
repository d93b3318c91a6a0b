// File names as strings without losing bytes. A Linux name is any byte sequence without "/" or
// NUL, but a Node string path is encoded as UTF-8, so a name that is not valid UTF-8 would be
// mangled (to U+FFFD) and then point at a different file. We use Python's "surrogateescape"
// scheme (PEP 383): valid UTF-8 decodes normally, and each byte of an invalid sequence (always
// ≥ 0x80) becomes the lone surrogate U+DC00 + byte. Strict UTF-8 never encodes a surrogate, so
// the mapping is reversible, and JSON keeps lone surrogates as "\udcXX" escapes, so such names
// survive our JSON state and protocol unchanged.
import { isUtf8 } from 'node:buffer';

const ESCAPE_BASE = 0xdc00;
/**
 * In a /u regex a surrogate pair is one code point, so this finds only lone surrogates. Made once:
 * bundled for Node 20, the literal becomes a RegExp constructed at every call, and every path the
 * sync touches comes through here.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Bytes → name. Valid UTF-8 gives the ordinary string; every byte sequence round-trips. */
export function nameFromBytes(buf: Buffer): string {
  if (isUtf8(buf)) return buf.toString('utf8');
  let name = '';
  let index = 0;
  while (index < buf.length) {
    const length = validSequenceLength(buf, index);
    if (length === 0) {
      name += String.fromCharCode(ESCAPE_BASE + buf[index]!);
      index += 1;
    } else {
      name += buf.toString('utf8', index, index + length);
      index += length;
    }
  }
  return name;
}

/** Name → bytes, the inverse of nameFromBytes. Throws on a lone surrogate it cannot have produced. */
export function bytesFromName(name: string): Buffer {
  if (!LONE_SURROGATE.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const char of name) {
    const code = char.charCodeAt(0);
    if (char.length === 1 && code >= 0xd800 && code <= 0xdfff) {
      if (code < ESCAPE_BASE + 0x80 || code > ESCAPE_BASE + 0xff) {
        throw new Error(`file name ${JSON.stringify(name)} holds a lone surrogate U+${code.toString(16).toUpperCase()} that stands for no byte`);
      }
      parts.push(Buffer.from(run, 'utf8'), Buffer.of(code - ESCAPE_BASE));
      run = '';
    } else {
      run += char;
    }
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/**
 * The fs path (as bytes) of `relative` under `root`. `relative` is a snapshot key: POSIX,
 * forward slashes, no "." or ".." segment, no leading or trailing slash; "" is the root itself.
 * Anything else throws, so a malformed key from state or the protocol can never reach outside
 * the root.
 */
export function joinBytes(root: Buffer | string, relative: string): Buffer {
  const rootBytes = typeof root === 'string' ? bytesFromName(root) : root;
  if (relative === '') return rootBytes;
  // An empty, "." or ".." segment, without splitting the path (every path the sync touches comes through here).
  const bounded = `/${relative}/`;
  if (bounded.includes('//') || bounded.includes('/./') || bounded.includes('/../')) {
    throw new Error(`not a relative sync path: ${JSON.stringify(relative)}`);
  }
  const separator = rootBytes[rootBytes.length - 1] === 0x2f ? [] : [Buffer.from('/')];
  return Buffer.concat([rootBytes, ...separator, bytesFromName(relative)]);
}

/**
 * Length of the well-formed UTF-8 sequence starting at `index`, or 0 if there is none (Unicode
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF). Escaping one byte at a
 * time and retrying gives the same result as Python, because the bytes after a bad lead byte
 * are continuation bytes, which never start a valid sequence themselves.
 */
function validSequenceLength(buf: Buffer, index: number): number {
  const lead = buf[index]!;
  if (lead < 0x80) return 1;
  const inRange = (offset: number, low: number, high: number): boolean => {
    const byte = buf[index + offset];
    return byte !== undefined && byte >= low && byte <= high;
  };
  const tail = (from: number, to: number): boolean => {
    for (let offset = from; offset <= to; offset += 1) if (!inRange(offset, 0x80, 0xbf)) return false;
    return true;
  };
  if (lead >= 0xc2 && lead <= 0xdf) return tail(1, 1) ? 2 : 0;
  if (lead === 0xe0) return inRange(1, 0xa0, 0xbf) && tail(2, 2) ? 3 : 0;
  if (lead === 0xed) return inRange(1, 0x80, 0x9f) && tail(2, 2) ? 3 : 0;
  if (lead >= 0xe1 && lead <= 0xef) return tail(1, 2) ? 3 : 0;
  if (lead === 0xf0) return inRange(1, 0x90, 0xbf) && tail(2, 3) ? 4 : 0;
  if (lead >= 0xf1 && lead <= 0xf3) return tail(1, 3) ? 4 : 0;
  if (lead === 0xf4) return inRange(1, 0x80, 0x8f) && tail(2, 3) ? 4 : 0;
  return 0;
}
