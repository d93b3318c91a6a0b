// The resident agent's garbage, collected when a cycle that walked both whole trees is over.
// V8 collects when allocating, and an agent at rest allocates next to nothing: what the last
// rescan left behind (every path it walked, the walk thread's numbers) stayed in its heap until
// the next one: 270 MB of RSS at rest at 100,000 files, 161-162 MB once collected (bench/memexp.ts).
// A full collection of that heap takes tens of milliseconds, once per rescan, which runs at most
// every thirty times its own walk; a cycle of a few paths, the per-save path, collects nothing.
// The supervisor starts the agent with --expose-gc for this (supervisor.ts).

/** Collects the garbage now, if the process was started with --expose-gc; otherwise does nothing. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
