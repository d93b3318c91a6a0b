import assert from 'node:assert/strict';
import { findPasswdEntry, isMountPoint, planIdentities, takenIds } from '../../src/agent/system';
import type { PasswdEntry } from '../../src/agent/system';

// /proc/self/mountinfo of a Clud container on Linux Docker Engine: the project folder, whose host path
// has a space, bind-mounted at /host, and a volume at a path with a space (escaped as \040).
const LINUX_MOUNTINFO = String.raw`612 541 0:52 / / rw,relatime master:289 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/1f2e/diff,workdir=/var/lib/docker/overlay2/1f2e/work
613 612 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
614 612 0:56 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
615 614 0:57 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
616 612 0:58 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
617 616 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
619 614 0:59 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k,inode64
620 612 254:1 /home/jane/My\040Project /host rw,relatime - ext4 /dev/vda1 rw,discard,errors=remount-ro
621 612 254:1 /var/lib/docker/containers/9c1d/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw
622 612 254:1 /var/lib/docker/containers/9c1d/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
623 612 254:1 /var/lib/docker/containers/9c1d/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw
624 612 254:1 /var/lib/docker/volumes/cache/_data /home/coder/.npm\040cache rw,relatime master:1 - ext4 /dev/vda1 rw
`;

// A container started without the /host mount, where "/host" appears only as a mount's root (field 4).
const NO_HOST_MOUNTINFO = String.raw`700 650 0:70 / / rw,relatime - overlay overlay rw,lowerdir=/l/A,upperdir=/u,workdir=/w
701 700 0:71 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
702 700 0:72 /host /mnt/host rw,relatime - virtiofs mount0 rw
703 700 254:1 /srv/data /data rw,relatime - ext4 /dev/vda1 rw`;

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
node:x:1000:1000::/home/node:/bin/bash
coder:x:1001:1001:Clud workspace user,,,:/home/coder:/bin/bash
codex:x:1002:1002::/home/codex:/bin/sh
broken:x:1003
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;

describe('unit: system', () => {
  describe('isMountPoint', () => {
    const cases: { mountinfo: string; fixture: string; mountPoint: string; expected: boolean }[] = [
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/host', expected: true },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/', expected: true },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/etc/hosts', expected: true },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/home/coder/.npm cache', expected: true },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: String.raw`/home/coder/.npm\040cache`, expected: false },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/workspace', expected: false },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/hos', expected: false },
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/host/sub', expected: false },
      // The host path of the /host mount is its root (field 4), not a mount point in the container.
      { fixture: 'linux', mountinfo: LINUX_MOUNTINFO, mountPoint: '/home/jane/My Project', expected: false },
      { fixture: 'no /host', mountinfo: NO_HOST_MOUNTINFO, mountPoint: '/host', expected: false },
      { fixture: 'no /host', mountinfo: NO_HOST_MOUNTINFO, mountPoint: '/mnt/host', expected: true },
      { fixture: 'empty', mountinfo: '', mountPoint: '/host', expected: false },
    ];
    for (const { fixture, mountinfo, mountPoint, expected } of cases) {
      it(`${fixture}: ${JSON.stringify(mountPoint)} is ${expected ? '' : 'not '}a mount point`, () => {
        assert.equal(isMountPoint(mountinfo, mountPoint), expected);
      });
    }
  });

  describe('findPasswdEntry', () => {
    const cases: { name: string; expected: PasswdEntry | undefined }[] = [
      { name: 'coder', expected: { name: 'coder', uid: 1001, gid: 1001, home: '/home/coder' } },
      { name: 'root', expected: { name: 'root', uid: 0, gid: 0, home: '/root' } },
      { name: 'nobody', expected: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' } },
      { name: 'code', expected: undefined },
      { name: 'coder2', expected: undefined },
      { name: 'broken', expected: undefined },
      { name: 'ghost', expected: undefined },
      { name: '', expected: undefined },
    ];
    for (const { name, expected } of cases) {
      it(`${JSON.stringify(name)} → ${expected ? `${expected.uid}:${expected.gid} ${expected.home}` : 'not found'}`, () => {
        assert.deepEqual(findPasswdEntry(PASSWD, name), expected);
      });
    }

    it('finds nothing in an empty file', () => {
      assert.equal(findPasswdEntry('', 'coder'), undefined);
    });
  });

  describe('takenIds', () => {
    it('lists the IDs of every account but the named ones', () => {
      assert.deepEqual([...takenIds(PASSWD, ['coder'])].sort((a, b) => a - b), [0, 1, 1000, 1002, 1003, 65534]);
    });
  });

  describe('planIdentities', () => {
    const coder: PasswdEntry = { name: 'coder', uid: 1000, gid: 1000, home: '/home/coder' };
    const clud: PasswdEntry = { name: 'clud', uid: 999, gid: 999, home: '/var/lib/clud' };
    const users = { sync: clud, workspace: coder };
    const none = { uids: new Set<number>(), gids: new Set<number>() };

    const owners: { owner: { uid: number; gid: number }; workspace: { uid: number; gid: number } }[] = [
      // The common case: the folder owner has the image's workspace UID, which moves aside.
      { owner: { uid: 1000, gid: 1000 }, workspace: { uid: 1001, gid: 1001 } },
      { owner: { uid: 501, gid: 20 }, workspace: { uid: 1000, gid: 1000 } },
      { owner: { uid: 1000, gid: 100 }, workspace: { uid: 1001, gid: 1000 } },
      { owner: { uid: 1234, gid: 1000 }, workspace: { uid: 1000, gid: 1001 } },
      { owner: { uid: 123456, gid: 100 }, workspace: { uid: 1000, gid: 1000 } },
    ];
    for (const { owner, workspace } of owners) {
      it(`a folder owned by ${owner.uid}:${owner.gid}: the sync user takes those IDs, the workspace user ${workspace.uid}:${workspace.gid}`, () => {
        assert.deepEqual(planIdentities(owner, users, none), { sync: owner, workspace, warnings: [] });
      });
    }

    it("moves the workspace user past IDs other accounts hold, never onto the sync user's", () => {
      const plan = planIdentities({ uid: 1000, gid: 1000 }, users, { uids: new Set([1001, 1002]), gids: new Set([1001]) });
      assert.deepEqual(plan.workspace, { uid: 1003, gid: 1002 });
    });

    it("keeps the sync user's own IDs and warns when the folder belongs to root", () => {
      const plan = planIdentities({ uid: 0, gid: 0 }, users, none);
      assert.deepEqual(plan.sync, { uid: 999, gid: 999 });
      assert.deepEqual(plan.workspace, { uid: 1000, gid: 1000 });
      assert.equal(plan.warnings.length, 1);
      assert.match(plan.warnings[0]!, /root/);
      assert.match(plan.warnings[0]!, /999/);
    });

    it('never plans UID 0 for either user, whatever the root-owned folder group', () => {
      const plan = planIdentities({ uid: 0, gid: 1000 }, users, none);
      assert.notEqual(plan.sync.uid, 0);
      assert.notEqual(plan.workspace.uid, 0);
      assert.notEqual(plan.workspace.uid, plan.sync.uid);
      assert.equal(plan.warnings.length, 1);
    });
  });
});
