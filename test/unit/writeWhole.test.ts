// writeWhole (src/core/files/fsEntry.ts), which every file Clud must not leave short goes through
// (the state store's journal and base, the undo journal, a large file's copy): a write the disk
// stops short, with no error, is written on until the disk's own error comes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { writeWhole } from '../../src/core/files/fsEntry';
import { onSmallDisk, useTempDir } from '../helpers/tempDir';

describe('unit: writeWhole', () => {
  const tempDir = useTempDir('clud-write-whole-');

  it('fails with ENOSPC where one write would have stopped short and said nothing', async function () {
    const disk = path.join(tempDir(), 'disk');
    mkdirSync(disk);
    await onSmallDisk(this, disk, '64k', async () => {
      // One page left: 8 KiB at once is written in part.
      execFileSync('sh', ['-c', `dd if=/dev/zero of=${disk}/filler bs=1k count=$(( $(df --output=avail -k ${disk} | tail -1) - 4 )) 2>/dev/null; true`]);
      const bytes = Buffer.alloc(8192, 1);
      const once = await open(path.join(disk, 'once'), 'w');
      try {
        const { bytesWritten } = await once.write(bytes, 0, bytes.length, 0);
        assert.ok(bytesWritten > 0 && bytesWritten < bytes.length, `the disk took ${bytesWritten} of ${bytes.length} bytes: not the short write this test needs`);
      } finally {
        await once.close();
      }
      execFileSync('rm', [path.join(disk, 'once')]);
      const whole = await open(path.join(disk, 'whole'), 'w');
      try {
        await assert.rejects(writeWhole(whole, bytes, 0), /ENOSPC/);
      } finally {
        await whole.close();
      }
    });
  });
});
