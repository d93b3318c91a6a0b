import assert from 'node:assert/strict';
import { LruMap } from '../../src/core/lruMap';

describe('unit: LruMap', () => {
  it('forgets the least recently used past its weight; a get counts as a use', () => {
    const map = new LruMap<string, number>(3);
    map.set('a', 1);
    map.set('b', 2);
    map.set('c', 3);
    assert.equal(map.get('a'), 1);
    map.set('d', 4);
    assert.deepEqual(map.keys(), ['c', 'a', 'd']);
    assert.equal(map.get('b'), undefined);
  });

  it('weighs values as told, keeps none heavier than it all, and frees the weight of what it deletes or replaces', () => {
    const map = new LruMap<string, string>(10, (value) => value.length);
    map.set('a', 'xxxx');
    map.set('b', 'yyyy');
    map.set('big', 'z'.repeat(11));
    assert.deepEqual(map.keys(), ['a', 'b']);
    map.set('a', 'xx');
    map.set('c', 'wwww');
    assert.deepEqual(map.keys(), ['b', 'a', 'c']);
    map.delete('b');
    map.set('d', 'vvvv');
    assert.deepEqual(map.keys(), ['a', 'c', 'd']);
    assert.equal(map.size, 3);
  });
});
