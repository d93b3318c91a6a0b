import assert from 'node:assert/strict';
import { ResultSchemas, SyncOptions, SyncReport, SyncRequestParams, UndoSettings, encodeMessage, parseAgentMessage, parseInitialCopyMessage, parseRequest } from '../../src/core/protocol';
import type { AgentMessage, Request } from '../../src/core/protocol';

const line = (value: unknown) => JSON.stringify(value);
const UNDO_DEFAULTS = UndoSettings.parse({});

describe('unit: protocol', () => {
  describe('parseRequest', () => {
    const valid: { name: string; request: unknown; expectedParams: unknown }[] = [
      { name: 'hello', request: { id: 1, method: 'hello', params: { protocolVersion: 1 } }, expectedParams: { protocolVersion: 1 } },
      { name: 'status', request: { id: 2, method: 'status', params: {} }, expectedParams: {} },
      {
        name: 'sync',
        request: { id: 3, method: 'sync', params: { policy: 'push', excludes: ['node_modules'], reset: true } },
        expectedParams: { policy: 'push', excludes: ['node_modules'], reset: true, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] },
      },
      { name: 'sync', request: { id: 0, method: 'sync', params: {} }, expectedParams: { policy: 'two-way-safe', excludes: [], reset: false, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] } },
      { name: 'history', request: { id: 6, method: 'history', params: {} }, expectedParams: {} },
      { name: 'compare', request: { id: 7, method: 'compare', params: {} }, expectedParams: { excludes: [], allowSecrets: [] } },
      {
        name: 'resolve',
        request: { id: 8, method: 'resolve', params: { path: 'src/a.ts', keep: 'both' } },
        expectedParams: { path: 'src/a.ts', keep: 'both', excludes: [], allowSecrets: [], undo: UNDO_DEFAULTS },
      },
      { name: 'backup', request: { id: 9, method: 'backup', params: { excludes: ['*.log'] } }, expectedParams: { excludes: ['*.log'], allowSecrets: [] } },
      { name: 'listBackups', request: { id: 10, method: 'listBackups', params: {} }, expectedParams: {} },
      {
        name: 'restoreBackup',
        request: { id: 11, method: 'restoreBackup', params: { backupId: '20250601T120000Z-abcdef', side: 'host' } },
        expectedParams: { backupId: '20250601T120000Z-abcdef', side: 'host', excludes: [], allowSecrets: [], undo: UNDO_DEFAULTS },
      },
      // A change names what it changes: a field left out stays as the agent has it, so it must not come back as its default.
      { name: 'configure', request: { id: 12, method: 'configure', params: { autoSync: 'off' } }, expectedParams: { autoSync: 'off' } },
      { name: 'configure', request: { id: 13, method: 'configure', params: { excludes: ['dist'], allowSecrets: [] } }, expectedParams: { excludes: ['dist'], allowSecrets: [] } },
      { name: 'configure', request: { id: 14, method: 'configure', params: {} }, expectedParams: {} },
      { name: 'retryInitialSync', request: { id: 5, method: 'retryInitialSync', params: {} }, expectedParams: { excludes: [], retries: 3, allowSecrets: [], autoSync: 'continuous', poll: [] } },
    ];
    for (const { name, request, expectedParams } of valid) {
      it(`accepts a valid ${name} request ${JSON.stringify((request as { params?: unknown }).params)}`, () => {
        const parsed = parseRequest(line(request));
        assert.ok(parsed.ok, `expected ok, got ${JSON.stringify(parsed)}`);
        assert.equal(parsed.value.method, name);
        assert.equal(parsed.value.id, (request as { id: number }).id);
        assert.deepEqual(parsed.value.params, expectedParams);
      });
    }

    for (const text of ['not json', '{"id":1,', '', '{id:1}']) {
      it(`rejects non-JSON ${JSON.stringify(text)} with id null and code bad-request`, () => {
        const parsed = parseRequest(text);
        assert.equal(parsed.ok, false);
        assert.deepEqual(parsed.ok ? undefined : { id: parsed.id, code: parsed.code }, { id: null, code: 'bad-request' });
      });
    }

    for (const json of ['null', '42', '"sync"', '[1,2]']) {
      it(`rejects the JSON value ${json}, which is not a request object`, () => {
        const parsed = parseRequest(json);
        assert.equal(parsed.ok, false);
        assert.deepEqual(parsed.ok ? undefined : { id: parsed.id, code: parsed.code }, { id: null, code: 'bad-request' });
      });
    }

    it('rejects an unknown method with code unknown-method and keeps the id', () => {
      const parsed = parseRequest(line({ id: 17, method: 'format-disk', params: {} }));
      assert.equal(parsed.ok, false);
      if (parsed.ok) return;
      assert.equal(parsed.code, 'unknown-method');
      assert.equal(parsed.id, 17);
      assert.match(parsed.message, /format-disk/);
    });

    // push and pull became policies of `sync`; an old client's request must fail loudly.
    for (const method of ['push', 'pull']) {
      it(`rejects the removed method ${method} as unknown-method`, () => {
        const parsed = parseRequest(line({ id: 2, method, params: { excludes: [], retries: 3 } }));
        assert.deepEqual(parsed.ok ? undefined : { id: parsed.id, code: parsed.code }, { id: 2, code: 'unknown-method' });
      });
    }

    // Regression: `method in ResultSchemas` also matched Object.prototype's properties.
    it('rejects a method named like an Object.prototype property as unknown-method', () => {
      for (const method of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        const parsed = parseRequest(line({ id: 4, method, params: {} }));
        assert.equal(parsed.ok, false, method);
        assert.deepEqual(parsed.ok ? undefined : { id: parsed.id, code: parsed.code }, { id: 4, code: 'unknown-method' }, method);
      }
    });

    const wrongParams: { name: string; request: unknown; field: string }[] = [
      { name: 'hello without protocolVersion', request: { id: 1, method: 'hello', params: {} }, field: 'params.protocolVersion' },
      { name: 'retryInitialSync with retries as a string', request: { id: 1, method: 'retryInitialSync', params: { retries: '3' } }, field: 'params.retries' },
      { name: 'retryInitialSync with retries above 10', request: { id: 1, method: 'retryInitialSync', params: { retries: 11 } }, field: 'params.retries' },
      { name: 'retryInitialSync with a non-integer retries', request: { id: 1, method: 'retryInitialSync', params: { retries: 1.5 } }, field: 'params.retries' },
      { name: 'sync with a non-string exclude', request: { id: 1, method: 'sync', params: { excludes: [1] } }, field: 'params.excludes' },
      { name: 'sync with an unknown policy', request: { id: 1, method: 'sync', params: { policy: 'mirror' } }, field: 'params.policy' },
      { name: 'sync with reset as a string', request: { id: 1, method: 'sync', params: { reset: 'yes' } }, field: 'params.reset' },
      { name: 'resolve with an empty path', request: { id: 1, method: 'resolve', params: { path: '', keep: 'host' } }, field: 'params.path' },
      { name: 'resolve with an unknown keep', request: { id: 1, method: 'resolve', params: { path: 'a', keep: 'neither' } }, field: 'params.keep' },
      { name: 'restoreBackup without a backupId', request: { id: 1, method: 'restoreBackup', params: { side: 'host' } }, field: 'params.backupId' },
      { name: 'restoreBackup with an unknown side', request: { id: 1, method: 'restoreBackup', params: { backupId: 'b', side: 'both' } }, field: 'params.side' },
      { name: 'status with an extra key', request: { id: 1, method: 'status', params: { verbose: true } }, field: 'verbose' },
      { name: 'history with an extra key', request: { id: 1, method: 'history', params: { limit: 5 } }, field: 'limit' },
      { name: 'sync without params', request: { id: 1, method: 'sync' }, field: 'params' },
    ];
    for (const { name, request, field } of wrongParams) {
      it(`rejects ${name} as bad-request naming ${field}`, () => {
        const parsed = parseRequest(line(request));
        assert.equal(parsed.ok, false);
        if (parsed.ok) return;
        assert.equal(parsed.code, 'bad-request');
        assert.equal(parsed.id, 1, 'a readable id is kept so that the error can be matched to the request');
        assert.ok(parsed.message.includes(field), `message ${JSON.stringify(parsed.message)} should name ${field}`);
      });
    }

    // Raw JSON text of the id: 1e400 parses to Infinity.
    for (const id of ['-1', '1.5', '"7"', 'null', '1e400']) {
      it(`rejects the id ${id} as bad-request with id null`, () => {
        const parsed = parseRequest(`{"id":${id},"method":"status","params":{}}`);
        assert.equal(parsed.ok, false);
        if (parsed.ok) return;
        assert.equal(parsed.code, 'bad-request');
        assert.equal(parsed.id, null);
        assert.match(parsed.message, /\bid\b/);
      });
    }

    it('rejects a request without an id', () => {
      const parsed = parseRequest(line({ method: 'status', params: {} }));
      assert.equal(parsed.ok, false);
      assert.deepEqual(parsed.ok ? undefined : { id: parsed.id, code: parsed.code }, { id: null, code: 'bad-request' });
    });
  });

  describe('parseInitialCopyMessage', () => {
    it('reads progress and the final state, and nothing else the copy\'s process printed', () => {
      assert.deepEqual(parseInitialCopyMessage('{"kind":"progress","data":{"phase":"copy","message":"3 file(s)","files":3}}'), { kind: 'progress', data: { phase: 'copy', message: '3 file(s)', files: 3 } });
      const done = parseInitialCopyMessage(JSON.stringify({ kind: 'done', state: { phase: 'ready', updatedAt: '2026-12-05T00:00:00.000Z' } }));
      assert.equal(done?.kind === 'done' && done.state.phase, 'ready');
      assert.equal(parseInitialCopyMessage('not json'), undefined);
      assert.equal(parseInitialCopyMessage('{"kind":"done"}'), undefined);
    });
  });

  describe('parseAgentMessage', () => {
    const messages: { name: string; message: AgentMessage }[] = [
      { name: 'a result', message: { kind: 'result', id: 3, result: { anything: ['goes', 1] } } },
      { name: 'an error', message: { kind: 'error', id: 4, code: 'sync-failed', message: 'rsync exited with code 23' } },
      { name: 'an error with id null', message: { kind: 'error', id: null, code: 'line-too-long', message: 'too long' } },
      { name: 'a progress with a file count', message: { kind: 'progress', id: 5, data: { phase: 'push', message: '12 files', files: 12 } } },
      { name: 'a progress without a file count', message: { kind: 'progress', id: 6, data: { phase: 'pull', message: 'starting' } } },
      { name: 'a log', message: { kind: 'log', level: 'warn', message: 'disk almost full' } },
    ];
    for (const { name, message } of messages) {
      it(`accepts ${name} message`, () => {
        const parsed = parseAgentMessage(line(message));
        assert.ok(parsed.ok, `expected ok, got ${JSON.stringify(parsed)}`);
        assert.deepEqual(parsed.value, message);
      });
    }

    const garbage: { name: string; text: string; id: number | null; mentions: string }[] = [
      { name: 'a line that is not JSON', text: 'Segmentation fault (core dumped)', id: null, mentions: 'Segmentation fault' },
      { name: 'an unknown kind', text: line({ kind: 'shout', id: 3 }), id: 3, mentions: 'kind' },
      { name: 'a progress message without data fields', text: line({ kind: 'progress', id: 8, data: {} }), id: 8, mentions: 'data.phase' },
      { name: 'an error with an unknown code', text: line({ kind: 'error', id: 2, code: 'oops', message: 'x' }), id: 2, mentions: 'code' },
      { name: 'a result with a negative id', text: line({ kind: 'result', id: -2, result: 1 }), id: null, mentions: 'id' },
      { name: 'a log with an unknown level', text: line({ kind: 'log', level: 'fatal', message: 'x' }), id: null, mentions: 'level' },
    ];
    for (const { name, text, id, mentions } of garbage) {
      it(`rejects ${name}`, () => {
        const parsed = parseAgentMessage(text);
        assert.equal(parsed.ok, false);
        if (parsed.ok) return;
        assert.equal(parsed.code, 'bad-request');
        assert.equal(parsed.id, id);
        assert.ok(parsed.message.includes(mentions), `message ${JSON.stringify(parsed.message)} should mention ${mentions}`);
      });
    }
  });

  describe('SyncOptions', () => {
    it('fills every default from an empty object', () => {
      assert.deepEqual(SyncOptions.parse({}), { excludes: [], retries: 3, allowSecrets: [], autoSync: 'continuous', poll: [] });
    });

    it('keeps given values over the defaults', () => {
      assert.deepEqual(SyncOptions.parse({ retries: 0, excludes: ['*.log'], allowSecrets: ['.env.test'], autoSync: 'off' }), { excludes: ['*.log'], retries: 0, allowSecrets: ['.env.test'], autoSync: 'off', poll: [] });
    });

    for (const retries of [-1, 11, 2.5]) {
      it(`rejects retries ${retries}`, () => {
        assert.equal(SyncOptions.safeParse({ retries }).success, false);
      });
    }
  });

  describe('SyncRequestParams', () => {
    it('carries the syncRetries setting to the agent, 3 when not given', () => {
      assert.equal(SyncRequestParams.parse({ retries: 0 }).retries, 0);
      assert.equal(SyncRequestParams.parse({ retries: 7 }).retries, 7);
      assert.equal(SyncRequestParams.parse({}).retries, 3);
      assert.equal(SyncRequestParams.safeParse({ retries: 11 }).success, false);
    });
  });

  describe('encodeMessage', () => {
    const request: Request = { id: 9, method: 'sync', params: { policy: 'newer-wins', excludes: ['a\nb', 'dir/'], reset: false, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] } };
    const message: AgentMessage = { kind: 'log', level: 'info', message: 'two\nlines' };

    it('ends with exactly one newline and has no other, even when strings contain newlines', () => {
      for (const encoded of [encodeMessage(request), encodeMessage(message)]) {
        assert.ok(encoded.endsWith('\n'));
        assert.equal(encoded.indexOf('\n'), encoded.length - 1, `${JSON.stringify(encoded)} has a newline before its end`);
      }
    });

    it('round-trips a request through parseRequest', () => {
      const parsed = parseRequest(encodeMessage(request));
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.value, request);
    });

    it('round-trips an agent message through parseAgentMessage', () => {
      const parsed = parseAgentMessage(encodeMessage(message));
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.value, message);
    });
  });

  describe('SyncReport', () => {
    const report = {
      id: '20250601T120000Z-abcdef',
      policy: 'host-wins',
      startedAt: '2025-06-01T12:00:00.000Z',
      durationMs: 5,
      applied: [{ path: 'a', side: 'container', action: 'create' }],
      appliedCount: 1,
      writtenCount: 1,
      deletedCount: 0,
      skipped: [],
      conflicts: [{ path: 'b', host: { kind: 'symlink', target: 'x' }, container: { kind: 'directory', mode: 0o755 } }],
      problems: [],
      kept: [],
      bytesCopied: 0,
      scanned: { hostFiles: 1, containerFiles: 0, hashedFiles: 1 },
    };

    it('defaults retries to 0, for reports written before it existed', () => {
      assert.equal(SyncReport.parse(report).retries, 0);
    });

    it('gives a skipped change of a report written before skip codes existed the code `failed` (never retried)', () => {
      const old = { ...report, skipped: [{ path: 'a.txt', side: 'host', reason: 'modified since the scan' }] };
      assert.equal(SyncReport.parse(old).skipped[0]!.code, 'failed');
      assert.equal(SyncReport.safeParse({ ...old, skipped: [{ ...old.skipped[0], code: 'no-such-code' }] }).success, false);
    });

    it('is the result schema of sync and resolve', () => {
      assert.deepEqual(ResultSchemas.sync.parse(report), { ...report, retries: 0, notices: [], keptOut: [] });
      assert.deepEqual(ResultSchemas.resolve.parse(report), { ...report, retries: 0, notices: [], keptOut: [] });
    });

    it('rejects an old push/pull metrics object as a sync result', () => {
      const metrics = { direction: 'push', startedAt: report.startedAt, durationMs: 1, filesTransferred: 1, filesDeleted: 0, bytesTransferred: 3, errors: [], retries: 0, changedPaths: [], changedPathsTruncated: false };
      assert.equal(ResultSchemas.sync.safeParse(metrics).success, false);
    });

    it('rejects a conflict entry of an unknown kind', () => {
      const broken = { ...report, conflicts: [{ path: 'b', host: { kind: 'socket' } }] };
      assert.equal(SyncReport.safeParse(broken).success, false);
    });
  });

  it("reads an older agent's compare answer, whose heldBySecret was true (the host's secret, the only kind it knew)", () => {
    const older = { differences: [{ path: 'config.yml', container: { kind: 'symlink', target: 'x' }, heldBySecret: true }], hasAgreedState: true };
    assert.equal(ResultSchemas.compare.parse(older).differences[0]!.heldBySecret, 'host');
    assert.equal(ResultSchemas.compare.parse({ ...older, differences: [{ ...older.differences[0], heldBySecret: 'container' }] }).differences[0]!.heldBySecret, 'container');
    assert.equal(ResultSchemas.compare.safeParse({ ...older, differences: [{ ...older.differences[0], heldBySecret: 'neither' }] }).success, false);
  });
});
