import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TAR_BLOCK, TAR_END, paxTime, tarHeader, tarMember, tarMemberMaxBytes, tarPadding, writeTarMember } from '../../src/core/tarStream';
import type { TarMember } from '../../src/core/tarStream';

/**
 * An archive of `members` (files with the given content) unpacked by the system's GNU tar into a
 * new folder. Each member is one buffer (tarMember), as the initial copy writes them; the same
 * archive from separate headers, content and padding must be the same bytes.
 */
function unpack(members: Array<{ member: TarMember; content?: Buffer }>): string {
  const target = mkdtempSync(path.join(os.tmpdir(), 'clud-tar-'));
  const archive = Buffer.concat(members.map(({ member, content }) => tarMember(member, content)).concat(TAR_END));
  const piecewise = Buffer.concat(members.flatMap(({ member, content }) => [tarHeader(member), ...(content ? [content, tarPadding(content.length)] : [])]).concat(TAR_END));
  assert.ok(archive.equals(piecewise), 'one-buffer members differ from header, content and padding');
  execFileSync('tar', ['--extract', '--file=-', `--directory=${target}`, '--preserve-permissions', '--no-same-owner', '--delay-directory-restore'], { input: archive });
  return target;
}

describe('tarStream', () => {
  const folders: string[] = [];
  afterEach(() => {
    for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  });

  it('writes headers GNU tar unpacks: folders, files with their modes and nanosecond times, symlinks', () => {
    const content = Buffer.from('hello\n');
    const target = unpack([
      { member: { kind: 'directory', path: Buffer.from('src'), mode: 0o750, mtimeMs: 1_700_000_000_123.25 } },
      { member: { kind: 'file', path: Buffer.from('src/run.sh'), mode: 0o755, mtimeMs: 1_700_000_001_456.5, size: content.length }, content },
      { member: { kind: 'file', path: Buffer.from('src/empty'), mode: 0o640, mtimeMs: 1_600_000_000_000, size: 0 }, content: Buffer.alloc(0) },
      { member: { kind: 'symlink', path: Buffer.from('link'), target: Buffer.from('src/run.sh'), mtimeMs: 1_700_000_000_000 } },
    ]);
    folders.push(target);
    assert.equal(readFileSync(path.join(target, 'src/run.sh'), 'utf8'), 'hello\n');
    assert.equal(lstatSync(path.join(target, 'src/run.sh')).mode & 0o7777, 0o755);
    assert.equal(lstatSync(path.join(target, 'src/empty')).mode & 0o7777, 0o640);
    assert.equal(lstatSync(path.join(target, 'src')).mode & 0o7777, 0o750);
    // Time to the microsecond at least (what mtimeMs carries), folders too, set after their content.
    assert.ok(Math.abs(lstatSync(path.join(target, 'src/run.sh')).mtimeMs - 1_700_000_001_456.5) < 0.001);
    assert.ok(Math.abs(lstatSync(path.join(target, 'src')).mtimeMs - 1_700_000_000_123.25) < 0.001);
    assert.equal(readlinkSync(path.join(target, 'link')), 'src/run.sh');
  });

  it('unpacks members in the order a concurrent scan decides them: folders keep their time and read-only mode', () => {
    const content = Buffer.from('late\n');
    const target = unpack([
      { member: { kind: 'directory', path: Buffer.from('a'), mode: 0o555, mtimeMs: 1_600_000_000_000 } },
      { member: { kind: 'directory', path: Buffer.from('b'), mode: 0o755, mtimeMs: 1_600_000_000_000 } },
      { member: { kind: 'file', path: Buffer.from('b/one'), mode: 0o644, mtimeMs: 1_600_000_000_000, size: content.length }, content },
      { member: { kind: 'file', path: Buffer.from('a/late'), mode: 0o644, mtimeMs: 1_600_000_000_000, size: content.length }, content },
    ]);
    folders.push(target);
    assert.equal(readFileSync(path.join(target, 'a/late'), 'utf8'), 'late\n');
    for (const folder of ['a', 'b']) assert.equal(lstatSync(path.join(target, folder)).mtimeMs, 1_600_000_000_000);
    assert.equal(lstatSync(path.join(target, 'a')).mode & 0o7777, 0o555);
    execFileSync('chmod', ['-R', 'u+w', target]); // so that afterEach can remove it as any user
  });

  it('carries names and link targets of any length and any bytes, not only UTF-8', () => {
    const longFolder = 'd'.repeat(120);
    const oddName = Buffer.concat([Buffer.from(`${longFolder}/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]); // Latin-1 é: not UTF-8
    const longTarget = `${longFolder}/${'t'.repeat(150)}`;
    const content = Buffer.from('x'.repeat(TAR_BLOCK + 1));
    const target = unpack([
      { member: { kind: 'directory', path: Buffer.from(longFolder), mode: 0o755, mtimeMs: 1_700_000_000_000 } },
      { member: { kind: 'file', path: oddName, mode: 0o644, mtimeMs: 1_700_000_000_000, size: content.length }, content },
      { member: { kind: 'symlink', path: Buffer.from(`${longFolder}/link`), target: Buffer.from(longTarget), mtimeMs: 1_700_000_000_000 } },
    ]);
    folders.push(target);
    assert.deepEqual(readFileSync(Buffer.concat([Buffer.from(`${target}/`), oddName])), content);
    assert.equal(readlinkSync(path.join(target, longFolder, 'link')), longTarget);
  });

  it('gives each length of pax record a header of its own size, however the lengths alternate', () => {
    // Records of 23 (a time of four digits), 30 (today) and 31 bytes (after the year 2286).
    const times = [1_500.5, 1_700_000_000_123.25, 10_000_000_000_000.5];
    const members = [...times, ...times.reverse()].map((mtimeMs, index) => ({ member: { kind: 'file' as const, path: Buffer.from(`f${index}`), mode: 0o644, mtimeMs, size: 1 }, content: Buffer.from(String(index)) }));
    const target = unpack(members);
    folders.push(target);
    for (const [index, { member }] of members.entries()) {
      assert.equal(readFileSync(path.join(target, `f${index}`), 'utf8'), String(index));
      assert.ok(Math.abs(lstatSync(path.join(target, `f${index}`)).mtimeMs - member.mtimeMs) < 0.001, `f${index}'s time`);
    }
  });

  it('pads a file to whole blocks and writes pax times with nine decimals', () => {
    assert.equal(tarPadding(0).length, 0);
    assert.equal(tarPadding(1).length, TAR_BLOCK - 1);
    assert.equal(tarPadding(TAR_BLOCK).length, 0);
    assert.equal(paxTime(1_700_000_000_123.25), '1700000000.123250000');
    assert.equal(paxTime(999.9999999), '1.000000000');
    assert.equal(paxTime(-1500), '-2');
    assert.equal(tarHeader({ kind: 'directory', path: Buffer.from('a'), mode: 0o755, mtimeMs: 0 }).length % TAR_BLOCK, 0);
  });

  it('sums each header block as ustar defines its checksum, sizes past 8 GiB in base-256 included', () => {
    const members: TarMember[] = [
      { kind: 'file', path: Buffer.from('a'.repeat(150)), mode: 0o644, mtimeMs: 1_700_000_000_123, size: 0o77777777777 + 1 },
      { kind: 'symlink', path: Buffer.from('link'), target: Buffer.from('t'.repeat(99)), mtimeMs: 5 },
      { kind: 'directory', path: Buffer.from([0xff, 0x41]), mode: 0o1777, mtimeMs: 0 },
    ];
    for (const member of members) {
      const header = tarHeader(member);
      for (let at = 0; at < header.length; at += TAR_BLOCK) {
        const block = Buffer.from(header.subarray(at, at + TAR_BLOCK));
        if (block.every((byte) => byte === 0)) continue; // the data of a long name or pax record
        if (block.subarray(257, 263).toString('latin1') !== 'ustar\u0000') continue;
        const recorded = parseInt(block.subarray(148, 154).toString('latin1'), 8);
        block.fill(0x20, 148, 156);
        assert.equal(recorded, block.reduce((sum, byte) => sum + byte, 0), `${member.kind} header at ${at}`);
      }
    }
    const big = tarHeader(members[0]!);
    const last = big.subarray(big.length - TAR_BLOCK);
    assert.equal(last[124], 0x80);
    assert.equal(last.readUIntBE(130, 6), 0o77777777777 + 1);
  });

  it("writes a member into a buffer that holds other bytes exactly as its own buffer, within the room it asks for", () => {
    const content = Buffer.from('x'.repeat(700));
    const members: Array<{ member: TarMember; content?: Buffer }> = [
      { member: { kind: 'file', path: Buffer.from('d/'.repeat(80) + 'f'), mode: 0o644, mtimeMs: 1_700_000_000_123.5, size: content.length }, content },
      { member: { kind: 'symlink', path: Buffer.from('l'), target: Buffer.from('t/'.repeat(90)), mtimeMs: 7 } },
      { member: { kind: 'directory', path: Buffer.from('d'), mode: 0o755, mtimeMs: 0 } },
    ];
    for (const { member, content: bytes } of members) {
      const expected = Buffer.concat([tarHeader(member), ...(bytes ? [bytes, tarPadding(bytes.length)] : [])]);
      // Garbage around and under the member: the initial copy reuses a chunk it does not zero.
      const chunk = Buffer.alloc(100 + tarMemberMaxBytes(member, bytes) + 100, 0xa5);
      const written = writeTarMember(chunk, 100, member, bytes);
      assert.ok(written <= tarMemberMaxBytes(member, bytes), `${member.kind}: ${written} bytes written, room for ${tarMemberMaxBytes(member, bytes)}`);
      assert.ok(chunk.subarray(100, 100 + written).equals(expected), `${member.kind} member differs`);
      assert.equal(chunk[99], 0xa5);
      assert.equal(chunk[100 + written], 0xa5);
    }
  });
});
