// Generated trees for the scale benchmarks: real folder depths, small mixed file sizes.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** ~10 files a folder, folders 5 wide, 6 levels deep at most; small mixed sizes. */
export function buildTree(root: string, files: number): { folders: number; deepFolder: string } {
  mkdirSync(root, { recursive: true });
  const folders: string[] = [root];
  let deepFolder = root;
  for (let i = 0; folders.length * 10 < files; i += 1) {
    const parent = folders[i];
    const depth = path.relative(root, parent).split(path.sep).filter(Boolean).length;
    if (depth >= 6) continue;
    for (let k = 0; k < 5 && folders.length * 10 < files; k += 1) {
      const folder = path.join(parent, `dir${k}`);
      mkdirSync(folder);
      folders.push(folder);
      deepFolder = folder;
    }
  }
  for (let n = 0; n < files; n += 1) writeFileSync(path.join(folders[n % folders.length], `file${n}.txt`), 'x'.repeat((n * 37) % 3000));
  return { folders: folders.length, deepFolder };
}

