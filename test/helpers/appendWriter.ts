// One side's writer for test/integration/concurrentEdits.test.ts: edits a synced tree for a while,
// as a person in an editor or a coding agent does (in place, or a temporary renamed over; new
// files, deletions, a burst, a folder renamed), with pauses of every length, so that its writes
// meet every stage of the continuous sync's cycles.
//
// Every version it writes is the one it found plus one new line (unique to the writer), so a
// version the sync displaced and lost takes at least one line with it that no later version
// holds: after the run, every line written must still be somewhere (either tree, a conflict
// copy, the kept folder), except those in what a writer displaced itself. The writer knows what
// it displaces, race or no race: it reads a file through the descriptor it writes, and before it
// renames a version over a path or deletes one, it moves what is there aside and reads that.
import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';

export interface WriterOptions {
  root: string;
  /** Names the writer's lines and its own paths ("host", "container"). */
  side: string;
  /** When to begin (Date.now() milliseconds), so that both sides' writers overlap whole. */
  startAt: number;
  durationMs: number;
  seed: number;
}

export interface WriterLog {
  /** Every line the writer added. */
  written: string[];
  /** Where and how each line was added: for the report of a lost one. */
  where: Record<string, string>;
  /** Every line of every version the writer displaced, deleting it or writing over it (its own or the other side's): gone by the user's hand. */
  deleted: string[];
  /**
   * Lines written in place into a file the sync replaced meanwhile (the descriptor's file was no
   * longer at the path after the write): the sync keeps what was written before its last look,
   * but a write after it lands in a file no longer anywhere, as with any program that replaces a
   * file by rename. Not counted either way.
   */
  unplaced: string[];
  /** How many times each operation ran. */
  operations: Record<string, number>;
}

/** Files both writers edit: where conflicts come from. */
export const SHARED_FILES = Array.from({ length: 48 }, (_, index) => `shared/d${index % 6}/f${index}.txt`);

/** A small seeded generator (mulberry32), so that a failing run can be repeated. */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const linesOf = (content: string) => content.split('\n').filter((line) => line !== '');

export async function runWriter(options: WriterOptions): Promise<WriterLog> {
  const random = randomFrom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const log: WriterLog = { written: [], where: {}, deleted: [], unplaced: [], operations: {} };
  const count = (operation: string) => (log.operations[operation] = (log.operations[operation] ?? 0) + 1);
  let sequence = 0;
  /** The writer's own folder of new files, renamed now and then. */
  let ownFolder = `${options.side}-new-0`;
  const full = (relative: string) => path.join(options.root, relative);

  /** Moves what is at `file` aside and reads it (undefined: nothing there): what the writer displaces. */
  const takeAway = (file: string): { ino: number; lines: string[] } | undefined => {
    const aside = `${file}.${options.side}-aside`;
    try {
      renameSync(file, aside);
    } catch {
      return undefined;
    }
    const taken = { ino: lstatSync(aside).ino, lines: linesOf(readFileSync(aside, 'utf8')) };
    unlinkSync(aside);
    return taken;
  };

  /** Adds a line in place: read and written through one descriptor, so what it extends is what it read. */
  const appendInPlace = (file: string, line: string) => {
    let descriptor: number | undefined;
    while (descriptor === undefined) {
      try {
        descriptor = openSync(file, 'r+');
      } catch {
        // Absent: created, and never opened over one the sync made meanwhile (then opened again).
        descriptor = (() => {
          try {
            return openSync(file, 'wx+');
          } catch {
            return undefined;
          }
        })();
      }
    }
    try {
      const content = readFileSync(descriptor);
      writeSync(descriptor, Buffer.from(`${line}\n`), 0, line.length + 1, content.length);
      let atPath: number | undefined;
      try {
        atPath = lstatSync(file).ino;
      } catch {
        atPath = undefined;
      }
      (atPath === fstatSync(descriptor).ino ? log.written : log.unplaced).push(line);
    } finally {
      closeSync(descriptor);
    }
  };

  /** Adds a line as an editor's atomic save does: the new version written beside, then put in place of the one read. */
  const appendRenamed = (file: string, line: string) => {
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${options.side}-${sequence}.tmp`);
    let read: { ino: number; lines: string[] } | undefined;
    try {
      const descriptor = openSync(file, 'r');
      try {
        read = { ino: fstatSync(descriptor).ino, lines: linesOf(readFileSync(descriptor, 'utf8')) };
      } finally {
        closeSync(descriptor);
      }
    } catch {
      read = undefined;
    }
    writeFileSync(temporary, [...(read?.lines ?? []), line, ''].join('\n'));
    for (;;) {
      // What is there now: the version read (its lines are in the new one), or one that appeared
      // since (the sync carrying the other side's), which this save displaces.
      const taken = takeAway(file);
      if (taken && taken.ino !== read?.ino) log.deleted.push(...taken.lines);
      try {
        linkSync(temporary, file);
        break;
      } catch {
        // Created meanwhile: taken away in turn.
      }
    }
    unlinkSync(temporary);
    log.written.push(line);
  };

  const append = (relative: string, how: 'in-place' | 'renamed') => {
    const file = full(relative);
    const line = `${options.side}-${(sequence += 1)}`;
    mkdirSync(path.dirname(file), { recursive: true });
    if (how === 'in-place') appendInPlace(file, line);
    else appendRenamed(file, line);
    log.where[line] = `${how} ${relative} at ${Date.now()}`;
  };

  await sleep(options.startAt - Date.now());
  const deadline = options.startAt + options.durationMs;
  while (Date.now() < deadline) {
    const roll = random();
    if (roll < 0.6) {
      const how = random() < 0.5 ? 'in-place' : 'renamed';
      append(pick(SHARED_FILES), how);
      count(`append ${how}`);
    } else if (roll < 0.64) {
      const taken = takeAway(full(pick(SHARED_FILES)));
      log.deleted.push(...(taken?.lines ?? []));
      count(taken ? 'delete' : 'delete of nothing');
    } else if (roll < 0.88) {
      append(`${ownFolder}/n${Math.floor(random() * 30)}.txt`, 'in-place');
      count('own file');
    } else if (roll < 0.95) {
      for (let index = 0; index < 15; index += 1) append(pick(SHARED_FILES), 'in-place');
      count('burst of 15');
    } else {
      const renamed = `${options.side}-new-${sequence}`;
      try {
        renameSync(full(ownFolder), full(renamed));
        ownFolder = renamed;
        count('folder renamed');
      } catch {
        count('rename of nothing');
      }
    }
    const pause = random();
    await sleep(pause < 0.7 ? random() * 20 : pause < 0.95 ? 50 + random() * 100 : 300 + random() * 300);
  }
  return log;
}
