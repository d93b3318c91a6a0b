import { MAX_LINE_BYTES } from './protocol';

export type LineEvent = { kind: 'line'; line: string } | { kind: 'overflow'; bytes: number };

/**
 * Splits a byte stream into lines without ever buffering more than `maxLineBytes`: a longer
 * line is reported once as `overflow` and its remaining bytes are skipped up to the next newline,
 * so one oversized message cannot exhaust memory or wedge the channel.
 */
export class LineSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private skipping = false;
  private skipped = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      const piece = chunk.subarray(start, end);
      if (this.skipping) {
        this.skipped += piece.length;
      } else if (this.buffered + piece.length > this.maxLineBytes) {
        this.skipping = true;
        this.skipped = this.buffered + piece.length;
        this.chunks = [];
        this.buffered = 0;
      } else if (piece.length > 0) {
        this.chunks.push(Buffer.from(piece));
        this.buffered += piece.length;
      }
      if (newline === -1) break;
      if (this.skipping) {
        events.push({ kind: 'overflow', bytes: this.skipped });
        this.skipping = false;
        this.skipped = 0;
      } else {
        const line = Buffer.concat(this.chunks).toString('utf8').replace(/\r$/, '');
        this.chunks = [];
        this.buffered = 0;
        if (line.trim() !== '') events.push({ kind: 'line', line });
      }
      start = newline + 1;
    }
    return events;
  }
}
