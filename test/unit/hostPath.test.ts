import assert from 'node:assert/strict';
import { containerNameFor, hostFolderMount, normalizeHostPath, toProtocolPath } from '../../src/core/host/hostPath';
import type { HostPlatform } from '../../src/core/host/hostPath';

/** Docker's rule for container names. */
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

describe('unit: hostPath', () => {
  describe('normalizeHostPath', () => {
    const cases: { platform: HostPlatform; input: string; cwd?: string; expected: string }[] = [
      { platform: 'linux', input: '/home/me/proj/', expected: '/home/me/proj' },
      { platform: 'linux', input: '/home/me/../me/./proj', expected: '/home/me/proj' },
      { platform: 'linux', input: 'proj', cwd: '/home/me', expected: '/home/me/proj' },
      { platform: 'linux', input: '../other', cwd: '/home/me/proj', expected: '/home/me/other' },
      { platform: 'darwin', input: '/Users/Me/Proj/', expected: '/Users/Me/Proj' },
      { platform: 'win32', input: 'C:\\Users\\me\\proj\\', expected: 'C:\\Users\\me\\proj' },
      { platform: 'win32', input: 'c:\\Users\\me\\..\\me\\proj', expected: 'C:\\Users\\me\\proj' },
      { platform: 'win32', input: 'C:/Users/me/proj', expected: 'C:\\Users\\me\\proj' },
      { platform: 'win32', input: 'proj\\sub', cwd: 'c:\\Users\\me', expected: 'C:\\Users\\me\\proj\\sub' },
      { platform: 'win32', input: '..\\other', cwd: 'D:\\work\\proj', expected: 'D:\\work\\other' },
    ];
    for (const { platform, input, cwd, expected } of cases) {
      it(`${platform}: ${JSON.stringify(input)}${cwd ? ` in ${JSON.stringify(cwd)}` : ''} → ${JSON.stringify(expected)}`, () => {
        assert.equal(normalizeHostPath(input, platform, cwd), expected);
      });
    }

    it('linux: keeps the case of the path', () => {
      assert.equal(normalizeHostPath('/Home/Me', 'linux'), '/Home/Me');
    });
  });

  describe('hostFolderMount', () => {
    it('win32: passes a path with spaces verbatim as Source and mounts it at /clud/host', () => {
      assert.deepEqual(hostFolderMount('C:\\Users\\Jane Doe\\My Project', 'win32'), {
        Type: 'bind',
        Source: 'C:\\Users\\Jane Doe\\My Project',
        Target: '/clud/host',
        ReadOnly: false,
      });
    });

    it('win32: normalises the drive letter and trailing separator', () => {
      assert.equal(hostFolderMount('d:\\code\\app\\', 'win32').Source, 'D:\\code\\app');
    });

    it('linux: mounts the absolute folder at /clud/host', () => {
      assert.deepEqual(hostFolderMount('/home/jane/My Project/', 'linux'), { Type: 'bind', Source: '/home/jane/My Project', Target: '/clud/host', ReadOnly: false });
    });
  });

  describe('containerNameFor', () => {
    it('is stable for the same folder, however it is spelled', () => {
      const name = containerNameFor('/home/me/proj', 'linux');
      assert.equal(containerNameFor('/home/me/proj', 'linux'), name);
      assert.equal(containerNameFor('/home/me/proj/', 'linux'), name);
      assert.equal(containerNameFor('/home/me/x/../proj', 'linux'), name);
    });

    it('has the form clud-<base name>-<8 hex>', () => {
      assert.match(containerNameFor('/home/me/proj', 'linux'), /^clud-proj-[0-9a-f]{8}$/);
    });

    it('differs for two folders with the same base name', () => {
      const a = containerNameFor('/home/me/work/app', 'linux');
      const b = containerNameFor('/home/me/play/app', 'linux');
      assert.notEqual(a, b);
      assert.match(a, /^clud-app-/);
      assert.match(b, /^clud-app-/);
    });

    it('win32: C:\\Proj and c:\\proj are one folder', () => {
      assert.equal(containerNameFor('C:\\Proj', 'win32'), containerNameFor('c:\\proj', 'win32'));
      assert.equal(containerNameFor('C:\\Users\\Me\\Proj', 'win32'), containerNameFor('c:\\users\\me\\PROJ\\', 'win32'));
    });

    it('linux: /Proj and /proj are two folders', () => {
      assert.notEqual(containerNameFor('/Proj', 'linux'), containerNameFor('/proj', 'linux'));
    });

    it('win32: the same path on two drives gives two names', () => {
      assert.notEqual(containerNameFor('C:\\work\\app', 'win32'), containerNameFor('D:\\work\\app', 'win32'));
    });

    const oddNames: { platform: HostPlatform; hostPath: string }[] = [
      { platform: 'linux', hostPath: '/home/me/My Project' },
      { platform: 'linux', hostPath: '/home/me/Ünïcødé 项目' },
      { platform: 'linux', hostPath: '/home/me/项目' },
      { platform: 'linux', hostPath: '/home/me/.hidden' },
      { platform: 'linux', hostPath: '/home/me/...dots' },
      { platform: 'linux', hostPath: '/home/me/-dash_start' },
      { platform: 'linux', hostPath: '/home/me/a:b*c?"<>|' },
      { platform: 'linux', hostPath: `/home/me/${'long-name-'.repeat(20)}` },
      { platform: 'linux', hostPath: '/' },
      { platform: 'darwin', hostPath: '/Users/Jane Doe/Développement' },
      { platform: 'win32', hostPath: 'C:\\Users\\Jane Doe\\My Project' },
      { platform: 'win32', hostPath: 'C:\\' },
    ];
    for (const { platform, hostPath } of oddNames) {
      it(`${platform}: uses only Docker-legal characters for ${JSON.stringify(hostPath)}`, () => {
        const name = containerNameFor(hostPath, platform);
        assert.match(name, DOCKER_NAME);
        assert.match(name, /^clud-[a-z0-9_.-]*-[0-9a-f]{8}$/);
        assert.ok(name.length <= 63, `${name} is ${name.length} characters long`);
      });
    }

    it('keeps a readable base name for a folder with spaces and a leading dot', () => {
      assert.match(containerNameFor('/home/me/My Project', 'linux'), /^clud-my-project-[0-9a-f]{8}$/);
      assert.match(containerNameFor('/home/me/.config', 'linux'), /^clud-config-[0-9a-f]{8}$/);
    });
  });

  describe('toProtocolPath', () => {
    it('win32: converts backslashes to forward slashes', () => {
      assert.equal(toProtocolPath('src\\core\\rsync.ts', 'win32'), 'src/core/rsync.ts');
    });

    for (const platform of ['linux', 'darwin'] as const) {
      it(`${platform}: leaves backslashes alone (they are legal in file names)`, () => {
        assert.equal(toProtocolPath('odd\\name/file.txt', platform), 'odd\\name/file.txt');
      });
    }
  });
});
