// Ctrl-C: by default the CLI exits at once (130), which closes its agent session and cancels the
// request. A command that must do something first (`clud run` stops its command and still closes
// its step) takes the next interrupt; a second Ctrl-C exits as usual.
let handler: (() => void) | undefined;

/** `onInterrupt` gets the next Ctrl-C instead of the exit. Returns the function that gives it back. */
export function takeInterrupts(onInterrupt: () => void): () => void {
  handler = onInterrupt;
  return () => {
    if (handler === onInterrupt) handler = undefined;
  };
}

/** Called on SIGINT: true when a command took it (once). */
export function deliverInterrupt(): boolean {
  const taken = handler;
  handler = undefined;
  taken?.();
  return taken !== undefined;
}
