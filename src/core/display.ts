// Names that came from a tree are chosen by whoever wrote the tree, the coding agent included.
// Printed as they are, an escape sequence in a name drives the user's terminal, and a newline
// forges a line of the report ("conflict … (clud resolve …)"). Everything Clud shows people (CLI
// text, the editor's messages and tree, log lines) goes through here; `--json` stays exact.

/**
 * Characters that must not reach a terminal or a one-line label as they are: C0 controls
 * (newline, ESC, …), DEL, C1 controls (0x80-0x9f: 0x9b is a one-byte CSI on some terminals),
 * the Unicode line and paragraph separators, the bidirectional controls that reorder what is
 * shown (the "Trojan Source" characters), and lone surrogates, which pathCodec uses for the bytes
 * of a name that are not UTF-8.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Surrogate}/gu;
// eslint-disable-next-line no-control-regex -- as above, and the backslash
const UNSAFE_OR_BACKSLASH = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Surrogate}/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

function escapeCharacter(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  // A lone surrogate stands for one byte of a name that is not UTF-8 (pathCodec): show that byte.
  if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16).padStart(2, '0')}`;
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/**
 * A path (or any name from a tree) as one safe line: control characters, newlines and the other
 * characters above are written as escapes (`\n`, `\x1b`, `\u{202e}`), and a backslash as `\\`,
 * so that two different names never look the same. A name without any of them is unchanged.
 */
export function displayPath(path: string): string {
  UNSAFE_OR_BACKSLASH.lastIndex = 0;
  return UNSAFE_OR_BACKSLASH.test(path) ? path.replace(UNSAFE_OR_BACKSLASH, escapeCharacter) : path;
}

/**
 * A message that may embed names from a tree (a problem's reason, a link target, an error from the
 * agent) as one safe line. Backslashes stay as they are: the message is prose, and may hold a
 * Windows path of the user's own.
 */
export function displayText(text: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text) ? text.replace(UNSAFE, escapeCharacter) : text;
}

/** A byte count for people, in binary units (KiB, MiB, …). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // One decimal below 100, without a trailing ".0" from 10 on: a file of 10.5 MiB over a limit of
  // 10 MiB must not read as "10 MiB (limit 10 MiB)".
  const digits = value >= 100 ? String(Math.round(value)) : value >= 10 ? String(Math.round(value * 10) / 10) : value.toFixed(1);
  return `${digits} ${units[unit]}`;
}
