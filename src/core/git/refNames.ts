// Where the agent's history lands in the host's repository, and how it is described. Pure.
//
// The agent's branch B arrives as the remote-tracking ref refs/remotes/clud/<workspace>/B, shown
// by git as `clud/<workspace>/B`. A remote-tracking ref, not a local branch: the user reads,
// merges, cherry-picks and deletes it with ordinary tools (`git merge clud/app/main`,
// `git branch -r -d ...`), but `git checkout` of it detaches HEAD instead of putting the user's
// commits on a ref Clud fast-forwards, so Clud alone writes it and never has to choose between
// the user's commits and the agent's. Everything else Clud writes (fetched tips being compared,
// old tips of rewritten agent branches) is under refs/clud/<workspace>/, out of `git branch`'s way.
import type { GitBranchInfo } from '../protocol';

/** The part of every ref name that says which workspace: the folder's name, made a valid ref component. */
export function gitNamespace(folderName: string): string {
  const cleaned = folderName
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[.-]+|[.-]+$/g, '')
    .replace(/\.lock$/i, '-lock');
  return cleaned || 'workspace';
}

export function agentBranchRef(namespace: string, branch: string): string {
  return `refs/remotes/clud/${namespace}/${branch}`;
}

export function agentBranchPrefix(namespace: string): string {
  return `refs/remotes/clud/${namespace}/`;
}

/** How git shows an agent branch: `clud/<workspace>/<branch>`. */
export function agentBranchName(namespace: string, branch: string): string {
  return `clud/${namespace}/${branch}`;
}

export function incomingPrefix(namespace: string): string {
  return `refs/clud/${namespace}/incoming/`;
}

/** The dated ref that keeps a rewritten agent branch's old tip reachable. */
export function keptTipRef(namespace: string, branch: string, oldTip: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `refs/clud/${namespace}/kept/${branch}/${stamp}-${oldTip.slice(0, 12)}`;
}

/** Where the host's branches appear in the container's repository: `host/<branch>`. */
export const HOST_BRANCHES_PREFIX = 'refs/remotes/host/';

/** "clud/app/main: 3 commits ahead of main" */
export function describeAgentBranch(branch: GitBranchInfo): string {
  const count = plural(branch.ahead, 'commit');
  return `${branch.hostName}: ${branch.base ? `${count} ahead of ${branch.base}` : `${count} on no host branch`}`;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
