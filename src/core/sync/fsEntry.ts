// Moved to src/core/files/fsEntry.ts. Only stepWriter.ts still imports it from here, until its rewrite
// (issue 20 part 1) imports from ../files; then this file goes.
export * from '../files/fsEntry';
