import assert from 'node:assert/strict';
import { hostStatePath, hostStatePathsIn } from '../../src/core/host/stateDirectory';

describe('unit: state folder paths reported on the host', () => {
  const state = '/home/me/.local/state/clud/workspaces/clud-app-1234';

  it('a kept version under /clud-state is reported in the state folder on the host', () => {
    assert.equal(hostStatePath('/clud-state/kept/20250101-abc/host/src/a b.ts', state, '/clud-state', 'linux'), `${state}/kept/20250101-abc/host/src/a b.ts`);
    assert.equal(hostStatePath('/clud-state', state, '/clud-state', 'linux'), state);
  });

  it('on Windows, with backslashes', () => {
    assert.equal(hostStatePath('/clud-state/kept/1/host/a.txt', 'C:\\Users\\me\\AppData\\Local\\clud\\workspaces\\x', '/clud-state', 'win32'), 'C:\\Users\\me\\AppData\\Local\\clud\\workspaces\\x\\kept\\1\\host\\a.txt');
  });

  it('leaves other paths alone, including one that only starts with the same letters', () => {
    assert.equal(hostStatePath('/workspace/a.txt', state, '/clud-state', 'linux'), '/workspace/a.txt');
    assert.equal(hostStatePath('/clud-statefoo/a', state, '/clud-state', 'linux'), '/clud-statefoo/a');
  });

  it('translates every state path inside a message', () => {
    assert.equal(
      hostStatePathsIn('rolled back (2 path(s); versions it replaced are kept in /clud-state/kept/1-x), see /clud-state/undo', '/s', '/clud-state', 'linux'),
      'rolled back (2 path(s); versions it replaced are kept in /s/kept/1-x), see /s/undo',
    );
  });
});
