// The scripted stand-in for the Anthropic API (test/helpers/fakeAnthropic.ts), spoken to over real
// HTTP in this process: the Messages API's answers and stream framing, where a request stands in
// the script, and what it refuses. The integration test claudeTurn.test.ts runs it against the
// real Claude Code.
import assert from 'node:assert/strict';
import type { FakeAnthropic, FakeScript } from '../helpers/fakeAnthropic';
import { scriptProblem, startFakeAnthropic, toolUseId } from '../helpers/fakeAnthropic';

const SCRIPT: FakeScript = {
  turns: [
    {
      prompt: 'rename it',
      responses: [
        {
          content: [
            { type: 'text', text: 'Looking.' },
            { type: 'tool_use', name: 'Write', input: { file_path: '/workspace/a.txt', content: 'a\n' } },
          ],
        },
        { content: [{ type: 'text', text: 'Done.' }] },
      ],
    },
  ],
  sideAnswer: 'A title',
};

const KEY = 'sk-ant-unit';
const TOOLS = [{ name: 'Write', input_schema: { type: 'object' } }];

interface SseEvent {
  event: string;
  data: { type: string; [key: string]: unknown };
}

/** Splits a text/event-stream body into its events (blank-line separated `event:` and `data:` lines). */
function parseSse(body: string): SseEvent[] {
  return body
    .split('\n\n')
    .filter((chunk) => chunk.trim())
    .map((chunk) => {
      const event = /^event: (.*)$/m.exec(chunk)![1]!;
      const data = JSON.parse(/^data: (.*)$/m.exec(chunk)![1]!) as SseEvent['data'];
      return { event, data };
    });
}

describe('fake Anthropic API (test helper)', function () {
  let fake: FakeAnthropic;

  beforeEach(async function () {
    fake = await startFakeAnthropic(SCRIPT, { apiKey: KEY });
  });

  afterEach(async function () {
    await fake.close();
  });

  function post(path: string, body: unknown, key = KEY): Promise<Response> {
    return fetch(`${fake.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body) });
  }

  const firstRequest = { model: 'claude-test', tools: TOOLS, messages: [{ role: 'user', content: [{ type: 'text', text: 'please rename it' }] }] };
  const secondRequest = {
    model: 'claude-test',
    tools: TOOLS,
    messages: [
      ...firstRequest.messages,
      { role: 'assistant', content: [{ type: 'tool_use', id: toolUseId(0, 1), name: 'Write', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUseId(0, 1), content: [{ type: 'text', text: 'written' }] }] },
    ],
  };

  it('streams an answer as the Messages API does: message_start, blocks with their deltas, message_delta with the stop reason, message_stop', async function () {
    const response = await post('/v1/messages?beta=true', { ...firstRequest, stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = parseSse(await response.text());
    for (const { event, data } of events) assert.equal(event, data.type);
    assert.deepEqual(
      events.map(({ event }) => event),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(events[2]!.data.content_block, { type: 'text', text: '' });
    assert.deepEqual(events[3]!.data.delta, { type: 'text_delta', text: 'Looking.' });
    assert.deepEqual(events[5]!.data.content_block, { type: 'tool_use', id: toolUseId(0, 1), name: 'Write', input: {} });
    const json = events
      .slice(6, 8)
      .map(({ data }) => (data.delta as { partial_json: string }).partial_json)
      .join('');
    assert.deepEqual(JSON.parse(json), { file_path: '/workspace/a.txt', content: 'a\n' });
    assert.equal((events[9]!.data.delta as { stop_reason: string }).stop_reason, 'tool_use');
  });

  it('answers without streaming with one message; the next answer is the one after as many as the request holds', async function () {
    const first = (await (await post('/v1/messages', firstRequest)).json()) as { stop_reason: string; content: unknown[] };
    assert.equal(first.stop_reason, 'tool_use');
    const second = (await (await post('/v1/messages', secondRequest)).json()) as { stop_reason: string; content: unknown[] };
    assert.deepEqual([second.stop_reason, second.content], ['end_turn', [{ type: 'text', text: 'Done.' }]]);
    // A retry gets the same answer again: the position comes from the request, not from a counter.
    const again = (await (await post('/v1/messages', secondRequest)).json()) as { content: unknown[] };
    assert.deepEqual(again.content, second.content);
    assert.deepEqual(
      fake.requests.map((request) => [request.kind, request.responseIndex]),
      [
        ['scripted', 0],
        ['scripted', 1],
        ['scripted', 1],
      ],
    );
    assert.deepEqual(fake.requests[1]!.toolResults, [{ toolUseId: toolUseId(0, 1), isError: false, text: 'written' }]);
    assert.equal(fake.requests[0]!.lastUserText, 'please rename it');
  });

  it('gives a request without tools the side answer, and counts tokens', async function () {
    const side = (await (await post('/v1/messages', { model: 'claude-test', messages: [{ role: 'user', content: 'title?' }] })).json()) as { content: unknown[] };
    assert.deepEqual(side.content, [{ type: 'text', text: 'A title' }]);
    const count = (await (await post('/v1/messages/count_tokens', firstRequest)).json()) as { input_tokens: number };
    assert.ok(count.input_tokens > 0);
    assert.deepEqual(
      fake.requests.map((request) => request.kind),
      ['side', 'count-tokens'],
    );
  });

  it('refuses a wrong key (401), a request past the script or with another prompt (400), and an unknown endpoint (404), as API errors', async function () {
    const wrongKey = await post('/v1/messages', firstRequest, 'sk-ant-other');
    assert.equal(wrongKey.status, 401);
    assert.deepEqual(((await wrongKey.json()) as { error: { type: string } }).error.type, 'authentication_error');
    const past = await post('/v1/messages', { ...secondRequest, messages: [...secondRequest.messages, { role: 'assistant', content: 'Done.' }, { role: 'user', content: 'more' }] });
    assert.equal(past.status, 400);
    assert.match(((await past.json()) as { error: { message: string } }).error.message, /the script has 2 answers and this request asks for answer 3/);
    const otherPrompt = await post('/v1/messages', { ...firstRequest, messages: [{ role: 'user', content: 'something else' }] });
    assert.equal(otherPrompt.status, 400);
    assert.match(((await otherPrompt.json()) as { error: { message: string } }).error.message, /should contain "rename it"/);
    const unknown = await fetch(`${fake.baseUrl}/v1/models`, { headers: { 'x-api-key': KEY } });
    assert.equal(unknown.status, 404);
    assert.deepEqual(
      fake.requests.map((request) => [request.kind, request.status]),
      [
        ['refused', 401],
        ['refused', 400],
        ['refused', 400],
        ['refused', 404],
      ],
    );
  });

  it('checks a script before playing it', function () {
    assert.equal(scriptProblem(SCRIPT), undefined);
    assert.match(scriptProblem({ turns: [] })!, /no turns/);
    assert.match(scriptProblem({ turns: [{ responses: [{ content: [{ type: 'tool_use', name: 'Bash', input: {} }] }] }] })!, /ends with a tool call/);
    assert.match(scriptProblem({ turns: [{ responses: [{ content: [{ type: 'text', text: 'a' }] }, { content: [{ type: 'text', text: 'b' }] }] }] })!, /calls no tool/);
  });
});
