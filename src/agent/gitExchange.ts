// The agent's side of the git exchange: which workspace it is, and the state file `clud status`
// reads (in the state folder, so the host reads it without the container).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { readJsonFile, writeFileAtomic } from '../core/atomicFile';
import { CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH, GIT_NAMESPACE_ENV, GIT_STATE_FILE } from '../core/containerLayout';
import { errorMessage } from '../core/errors';
import { exchangeHistory } from '../core/git/bridge';
import { gitNamespace } from '../core/git/refNames';
import { GitStatusSchema, type GitExchange, type GitStatus } from '../core/protocol';
import { log } from './log';

/**
 * What the last exchange saw that the next one compares with (see bridge.ts): the branch the
 * folder's HEAD was on (the user switched?) and the agent branch tips carried (the user deleted
 * one?); after a restart, as git.json recorded them.
 */
let previous: Promise<Pick<GitStatus, 'hostHead' | 'carried'> | undefined> | undefined;

export async function exchangeGitHistory(): Promise<GitExchange | undefined> {
  const file = path.join(CONTAINER_STATE_PATH, GIT_STATE_FILE);
  previous ??= readJsonFile(file, GitStatusSchema).catch(() => undefined);
  const last = await previous;
  const exchange = await exchangeHistory(
    { host: CONTAINER_HOST_PATH, container: CONTAINER_WORKSPACE_PATH },
    { namespace: gitNamespace(process.env[GIT_NAMESPACE_ENV] ?? ''), previousHostHead: last?.hostHead, previouslyCarried: last?.carried },
  );
  previous = Promise.resolve(exchange && { hostHead: exchange.hostHead, carried: exchange.carried });
  for (const problem of exchange?.problems ?? []) log('warn', problem);
  if (!existsSync(CONTAINER_STATE_PATH)) return exchange;
  const status: GitStatus | undefined = exchange && { updatedAt: new Date().toISOString(), branches: exchange.branches, problems: exchange.problems, hostHead: exchange.hostHead, carried: exchange.carried };
  // No repository on either side: what an earlier exchange recorded (a repository since removed) no longer holds.
  const recorded = status ? writeFileAtomic(file, JSON.stringify(status, null, 2) + '\n') : rm(file, { force: true });
  await recorded.catch((error: unknown) => log('warn', `cannot record the git state: ${errorMessage(error)}`));
  return exchange;
}
