import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { INIT_STATE_PATH } from '../core/containerLayout';
import { InitState } from '../core/protocol';

export function readInitState(file = INIT_STATE_PATH): InitState | undefined {
  try {
    return InitState.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return undefined;
  }
}

/** Written with temp-file-and-rename, so a reader (the host, via the Docker API) never sees half a file. */
export function writeInitState(state: Omit<InitState, 'updatedAt'>, file = INIT_STATE_PATH): InitState {
  const full = InitState.parse({ ...state, updatedAt: new Date().toISOString() });
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(full, null, 2));
  renameSync(temporary, file);
  return full;
}
