import { CludError } from '../../core/errors';
import type { SyncReport } from '../../core/protocol';
import { POLICIES } from '../../core/sync/reconcile';
import type { Policy } from '../../core/sync/reconcile';
import { countOf, summarizeReport } from '../../core/sync/summary';
import type { CommandOutput, CommandSpec } from '../command';
import { questionHandler } from '../ask';
import { ALLOW_SECRET_OPTION } from '../command';
import { formatReport } from '../format';

/** push, pull and sync are one sync cycle each; they differ in policy. */
export function syncCommand(name: 'push' | 'pull' | 'sync', summary: string): CommandSpec {
  return {
    name,
    usage: name === 'sync' ? `clud sync [DIR] [--policy ${POLICIES.join('|')}] [--yes] [--allow-secret PATTERN]... [--json]` : `clud ${name} [DIR] [--yes] [--allow-secret PATTERN]... [--json]`,
    summary,
    options: {
      ...(name === 'sync' && { policy: { type: 'string', description: 'how to settle conflicts (default two-way-safe: keep both, change neither)' } }),
      yes: { type: 'boolean', description: 'allow what a safeguard would ask about (many deletions, big overwrites)' },
      'allow-secret': ALLOW_SECRET_OPTION,
    },
    async run({ workspace, flags }) {
      const policy = (name === 'sync' ? (flags.policy ?? 'two-way-safe') : name) as Policy;
      if (!POLICIES.includes(policy)) throw new CludError('bad-input', `unknown policy "${String(flags.policy)}"`, `Use one of ${POLICIES.join(', ')}.`);
      return reportOutput(await workspace.syncCycle(policy, { onQuestion: questionHandler(flags) }), workspace.hostPath);
    },
  };
}

/** Exit 1 when the sync halted or left changes undone; conflicts alone are a result, not a failure. */
export function reportOutput(report: SyncReport, hostPath: string): CommandOutput {
  const { errors, problems, ...counts } = summarizeReport(report);
  const ok = !report.halted && !report.denied && countOf(report, 'skipped') === 0;
  const metrics = { durationMs: report.durationMs, ...counts, errors, problems, retries: report.retries };
  return { json: { ok, metrics, report }, text: formatReport(report, hostPath), exitCode: ok ? 0 : 1 };
}
