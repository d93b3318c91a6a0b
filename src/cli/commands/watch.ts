import type { LiveStatus } from '../../core/protocol';
import { displayText } from '../../core/display';
import { askOnTerminal } from '../ask';
import type { CommandSpec } from '../command';
import { formatLiveEvent } from '../format';

export const watch: CommandSpec = {
  name: 'watch',
  usage: 'clud watch [DIR] [--json]',
  summary: 'Follow the sync as it happens: every cycle, status change, halt and question, until Ctrl-C (--json: one JSON object per line). On a terminal, a safeguard question of a background sync is asked here.',
  options: {},
  interruptNote: 'stopped watching (the sync goes on in the container)',
  async run({ workspace, flags }) {
    const json = flags.json === true;
    const line = (text: string) => process.stdout.write(text + '\n');
    const say = (text: string) => process.stderr.write(`clud: ${displayText(text)}\n`);
    let shown: LiveStatus | undefined;
    const channel = workspace.openLive({
      status: () => {},
      event: (event) => {
        if (json) {
          line(JSON.stringify({ time: new Date().toISOString(), ...event }));
        } else {
          const text = formatLiveEvent(event, new Date(), shown, workspace.hostPath);
          if (text) line(text);
        }
        // A syncing status is never printed (the cycle's lines say it): the last one printed stays the one compared with.
        if (event.type === 'status' && event.status.state !== 'syncing') shown = event.status;
      },
      // A terminal answers here; without one the question stays open for another client.
      question: async (question) => {
        const answer = await askOnTerminal(question);
        if (answer === undefined) say(`a sync waits for approval: ${question.detail} (answer it in VS Code, or allow it with \`clud sync --yes\`)`);
        return answer;
      },
      connection: (change) => {
        if (json) {
          line(JSON.stringify({ time: new Date().toISOString(), type: 'connection', state: change.state, ...(change.state === 'reconnecting' && { delayMs: change.delayMs, code: change.error.code }) }));
          return;
        }
        if (change.state === 'reconnecting') say(`${change.error.code === 'agent-unavailable' ? 'waiting for the sync agent' : 'lost the sync agent'} (${change.error.message}); trying again in ${(change.delayMs / 1000).toFixed(1)} s`);
        if (change.state === 'connected' && change.reconnected) {
          shown = undefined;
          say('reconnected to the sync agent');
        }
      },
      notice: say,
    });
    const error = await channel.ended;
    if (error) throw error;
    return { json: { ok: true, type: 'end' }, text: '', exitCode: 0 };
  },
};
