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
    // Everything in src/core: never the shells, never the VS Code API.
    { files: ['src/core/**/*.ts'], packages: ['zod', 'dockerode', 'tar-stream', 'ignore'], never: ['agent', 'cli', 'extension'] },
    // The leaf: byte-safe names, snapshot entries, reading, hashing and replacing one path.
    { files: ['src/core/files/**/*.ts'], packages: [], onlyOwnFolder: true },
    { files: ['src/core/undo/**/*.ts'], packages: ['zod'], never: ['sync', 'docker', 'git', 'ui'], withinCore: true },
    { files: ['src/core/sync/**/*.ts'], packages: ['zod', 'ignore'], never: ['docker', 'git', 'ui'], withinCore: true },
    { files: ['src/core/git/**/*.ts'], packages: [], never: ['docker', 'sync', 'undo', 'ui'], withinCore: true },
    { files: ['src/core/docker/**/*.ts'], packages: ['dockerode', 'tar-stream'], never: ['git', 'sync', 'undo', 'ui'], withinCore: true },
    { files: ['src/core/ui/**/*.ts'], packages: [], never: ['docker', 'undo'], withinCore: true },
    // zod: the agent validates what Claude Code's hooks and MCP clients send it.
    { files: ['src/agent/**/*.ts'], packages: ['execa', 'zod'], never: ['cli', 'extension'] },
    { files: ['src/cli/**/*.ts'], packages: [], never: ['agent', 'extension'] },
    { files: ['src/extension/**/*.ts'], packages: ['vscode'], never: ['agent', 'cli'] },
  ];
  const see = '(docs/ARCHITECTURE.md, Layers)';
  return table.map(({ files, packages, never = [], withinCore = false, onlyOwnFolder = false }) => {
    const patterns = [
      {
        regex: `^(?!node:|\\.${packages.map((name) => `|${name.replace(/[.]/g, '\\.')}(/|$)`).join('')})`,
        message: `${files[0].replace('/**/*.ts', '')} may import Node's modules${packages.length ? `, ${packages.join(', ')}` : ''} and no other package ${see}.`,
      },
    ];
    if (never.length) patterns.push({ regex: `^(\\.\\./)+(${never.join('|')})(/|$)`, message: `${files[0].replace('/**/*.ts', '')} must not import from ${never.join(', ')} ${see}.` });
    if (withinCore) patterns.push({ regex: '^\\.\\./\\.\\./', message: `src/core must not import from outside src/core ${see}.` });
    if (onlyOwnFolder) patterns.push({ regex: '^\\.\\./', message: `src/core/files is the leaf: it imports nothing from other folders ${see}.` });
    return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
  });
}
