// Structured log lines in the Clud output channel: one JSON object each, with the correlation
// id of the operation it belongs to, so one sync can be followed through the log.
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';
import { displayText } from '../core/display';

export class Logger {
  constructor(readonly channel: vscode.LogOutputChannel) {}

  newCorrelationId(): string {
    return randomBytes(4).toString('hex');
  }

  info(event: string, fields: Record<string, unknown> = {}): void {
    this.channel.info(JSON.stringify({ event, ...fields }));
  }

  error(event: string, fields: Record<string, unknown> = {}): void {
    this.channel.error(JSON.stringify({ event, ...fields }));
  }

  /** Free text, e.g. the image build's output, line by line; escaped, so one line stays one line. */
  line(text: string): void {
    this.channel.info(displayText(text));
  }
}
