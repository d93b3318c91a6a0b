import type { SyncDirection } from '../../core/protocol';
import type { CommandSpec } from '../command';
import { formatMetrics } from '../format';

/** push and pull differ only in direction. */
export function syncCommand(direction: SyncDirection, summary: string): CommandSpec {
  return {
    name: direction,
    usage: `clud ${direction} [DIR] [--json]`,
    summary,
    options: {},
    async run({ workspace }) {
      const metrics = await workspace.sync(direction);
      const ok = metrics.errors.length === 0;
      return { json: { ok, metrics }, text: formatMetrics(metrics), exitCode: ok ? 0 : 1 };
    },
  };
}
