// bench/scaleBench.ts's probe in the container (run with `node -e`, as the workspace user): writes
// files and waits for them on request, one JSON line each way, answering with the time it finished
// (Date.now(): one kernel clock with the host's on Linux). What the coding agent's writes and
// reads look like.
const fs = require('node:fs');
const path = require('node:path');
const lines = require('node:readline').createInterface({ input: process.stdin });

const arrived = (file, size) => {
  try {
    return fs.statSync(file).size === size;
  } catch {
    return false;
  }
};

lines.on('line', async (line) => {
  const { op, files, content } = JSON.parse(line);
  if (op === 'write') {
    for (const file of files) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
    }
  } else {
    // A file that arrived stays (the sync writes whole files by one link): each look starts at the first still missing.
    for (let next = 0; next < files.length; ) {
      if (arrived(files[next], Buffer.byteLength(content))) next += 1;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  process.stdout.write(`${JSON.stringify({ at: Date.now() })}\n`);
});
