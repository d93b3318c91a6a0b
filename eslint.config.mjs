import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', '.clud-test/**', 'test-results/**', 'bench-results/**', '.vscode-test/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  ...layers(),
);

/**
 * The layers of docs/ARCHITECTURE.md ("Layers"), enforced: for each folder, the npm packages it
 * may import (besides Node's own modules) and the folders it must not import from. A file gets the
 * rule of the last entry whose folder holds it, so every entry states its folder's whole rule.
 */
function layers() {
  const table = [
    // Everything in src/core: never the shells, never the VS Code API; host-only code only from host-side folders.
    { files: ['src/core/**/*.ts'], packages: ['zod', 'dockerode', 'tar-stream', 'ignore'], never: ['agent', 'cli', 'extension'], notHost: true },
    // The leaf: byte-safe names, snapshot entries, reading, hashing and replacing one path.
    { files: ['src/core/files/**/*.ts'], packages: [], onlyOwnFolder: true },
    // Host-only: what the CLI and the extension run (the Workspace service, the agent client, settings, the image's context).
    { files: ['src/core/host/**/*.ts'], packages: ['zod', 'tar-stream'], never: ['undo', 'ui'], withinCore: true },
    // Agent-only: the undo log runs where the sync does, in the container.
    { files: ['src/core/undo/**/*.ts'], packages: ['zod'], never: ['sync', 'docker', 'git', 'ui', 'live'], withinCore: true, notHost: true },
    { files: ['src/core/sync/**/*.ts'], packages: ['zod', 'ignore'], never: ['docker', 'git', 'ui', 'live'], withinCore: true, notHost: true },
    { files: ['src/core/git/**/*.ts'], packages: [], never: ['docker', 'sync', 'undo', 'ui', 'live'], withinCore: true, notHost: true },
    { files: ['src/core/docker/**/*.ts'], packages: ['dockerode', 'tar-stream'], never: ['git', 'sync', 'undo', 'ui', 'live'], withinCore: true, notHost: true },
    { files: ['src/core/ui/**/*.ts'], packages: [], never: ['docker', 'undo'], withinCore: true, notHost: true },
    // The live channel subscribes through the host's agent client.
    { files: ['src/core/live/**/*.ts'], packages: [], never: ['docker', 'undo', 'sync', 'git', 'ui'], withinCore: true },
    // zod: the agent validates what Claude Code's hooks and MCP clients send it. Never the host's code.
    { files: ['src/agent/**/*.ts'], packages: ['execa', 'zod'], never: ['cli', 'extension'], neverCore: ['host', 'docker', 'live', 'ui'] },
    { files: ['src/cli/**/*.ts'], packages: [], never: ['agent', 'extension'], neverCore: ['undo'] },
    { files: ['src/extension/**/*.ts'], packages: ['vscode'], never: ['agent', 'cli'], neverCore: ['undo'] },
  ];
  const see = '(docs/ARCHITECTURE.md, Layers)';
  return table.map(({ files, packages, never = [], neverCore = [], withinCore = false, onlyOwnFolder = false, notHost = false }) => {
    const patterns = [
      {
        regex: `^(?!node:|\\.${packages.map((name) => `|${name.replace(/[.]/g, '\\.')}(/|$)`).join('')})`,
        message: `${files[0].replace('/**/*.ts', '')} may import Node's modules${packages.length ? `, ${packages.join(', ')}` : ''} and no other package ${see}.`,
      },
    ];
    if (never.length) patterns.push({ regex: `^(\\.\\./)+(${never.join('|')})(/|$)`, message: `${files[0].replace('/**/*.ts', '')} must not import from ${never.join(', ')} ${see}.` });
    if (neverCore.length) patterns.push({ regex: `^(\\.\\./)+core/(${neverCore.join('|')})(/|$)`, message: `${files[0].replace('/**/*.ts', '')} must not import src/core/${neverCore.join(', src/core/')} ${see}.` });
    if (notHost) patterns.push({ regex: '^(\\./|\\.\\./)host(/|$)', message: `src/core/host is host-only: only the shells and host-side folders import it ${see}.` });
    if (withinCore) patterns.push({ regex: '^\\.\\./\\.\\./', message: `src/core must not import from outside src/core ${see}.` });
    if (onlyOwnFolder) patterns.push({ regex: '^\\.\\./', message: `src/core/files is the leaf: it imports nothing from other folders ${see}.` });
    return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
  });
}
