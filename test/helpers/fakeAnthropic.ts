// A scripted stand-in for the Anthropic Messages API, so that tests can run the real Claude Code
// (in the workspace container, pointed at it with ANTHROPIC_BASE_URL) through a whole turn with
// tool calls, without a network or a model. It answers from a fixed script of turns, given as
// data; nothing of Claude Code is mocked.
//
// Only Node's own modules are used: the tests bundle this file with its entry point
// (fakeAnthropicMain.ts) into one script that runs on the container's Node (see
// fakeAnthropicContainer.ts), and it runs as well in the test process.
//
// Where a request stands in the script is read from the request itself, not from a counter: the
// model's n-th answer in a conversation is the one whose request already holds n-1 assistant
// messages. So a retried request gets the same answer again, and a request that is not part of
// the conversation (one without tools: a title, a summary) gets the side answer, not the next step.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A block of an assistant answer: text, or a call of one of Claude Code's tools (built-in or MCP, e.g. `mcp__filesystem__write_file`). */
export type ScriptedBlock = { type: 'text'; text: string } | { type: 'tool_use'; name: string; input: Record<string, unknown> };

/** One answer of the model. It stops for tool use when it calls a tool, else it ends the turn. */
export interface ScriptedResponse {
  content: ScriptedBlock[];
}

/**
 * One turn: the user's prompt, then the model's answers until its final one. Every answer but the
 * last calls at least one tool (Claude Code sends the results back and asks again); the last is
 * text only and ends the turn.
 */
export interface ScriptedTurn {
  /** When set, the turn's user message must contain it; otherwise the request is refused (400), which shows a script out of step. */
  prompt?: string;
  responses: ScriptedResponse[];
}

export interface FakeScript {
  turns: ScriptedTurn[];
  /** The answer to requests outside the conversation (without tools). Default: "OK". */
  sideAnswer?: string;
}

export interface FakeAnthropicOptions {
  /** When set, a request without this `x-api-key` (or bearer token) is refused with 401, as the real API would. */
  apiKey?: string;
  /** Called with a record of every request, after it was answered. */
  onRequest?: (record: FakeRequestRecord) => void;
}

/** A tool result that Claude Code sent back, as the fake saw it. */
export interface SeenToolResult {
  toolUseId: string;
  isError: boolean;
  /** The result's text blocks, joined with newlines. */
  text: string;
}

/** What the fake received and how it answered: one per request, in order. */
export interface FakeRequestRecord {
  method: string;
  path: string;
  /** `scripted`: an answer from the script (`responseIndex`); `side`: a request without tools; `count-tokens`; `refused`: 400/401/404, with `error`. */
  kind: 'scripted' | 'side' | 'count-tokens' | 'refused';
  status: number;
  /** Index into the script's answers, flattened over its turns (scripted requests). */
  responseIndex?: number;
  model?: string;
  stream?: boolean;
  /** Names of the tools the request offered. */
  tools?: string[];
  /** Whether the request carried the expected key (always true when none is expected). */
  apiKeyMatched: boolean;
  /** The text of the last user message (its text blocks, joined with newlines). */
  lastUserText?: string;
  /** Tool results in the last user message. */
  toolResults?: SeenToolResult[];
  error?: string;
  /** The request's JSON body, for checks this record does not summarise. */
  body?: unknown;
}

export interface FakeAnthropic {
  /** http://127.0.0.1:PORT, for ANTHROPIC_BASE_URL. */
  baseUrl: string;
  requests: FakeRequestRecord[];
  close(): Promise<void>;
}

interface MessagesRequest {
  model?: string;
  stream?: boolean;
  tools?: { name?: string }[];
  messages?: { role?: string; content?: unknown }[];
}

interface ScriptPosition {
  response: ScriptedResponse;
  index: number;
  turn: ScriptedTurn;
}

/** Why a script cannot be played, or undefined when it can. */
export function scriptProblem(script: FakeScript): string | undefined {
  if (script.turns.length === 0) return 'the script has no turns';
  for (const [turnIndex, turn] of script.turns.entries()) {
    if (turn.responses.length === 0) return `turn ${turnIndex + 1} has no answers`;
    for (const [index, response] of turn.responses.entries()) {
      const last = index === turn.responses.length - 1;
      const callsTools = response.content.some((block) => block.type === 'tool_use');
      if (response.content.length === 0) return `turn ${turnIndex + 1}, answer ${index + 1} is empty`;
      if (last && callsTools) return `turn ${turnIndex + 1} ends with a tool call; its last answer must be text only`;
      if (!last && !callsTools) return `turn ${turnIndex + 1}, answer ${index + 1} calls no tool, so Claude Code would end the turn there`;
    }
  }
  return undefined;
}

/** The answer for the request at flattened position `index`, with its turn. */
function positionOf(script: FakeScript, index: number): ScriptPosition | undefined {
  let remaining = index;
  for (const turn of script.turns) {
    if (remaining < turn.responses.length) return { response: turn.responses[remaining]!, index, turn };
    remaining -= turn.responses.length;
  }
  return undefined;
}

/** The text of a message's content (a string, or the text blocks of an array). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((block): block is { type: 'text'; text: string } => typeof block === 'object' && block !== null && block.type === 'text' && typeof block.text === 'string')
    .map((block) => block.text)
    .join('\n');
}

function toolResultsOf(content: unknown): SeenToolResult[] {
  if (!Array.isArray(content)) return [];
  return content
    .filter((block): block is { type: 'tool_result'; tool_use_id: string; is_error?: boolean; content?: unknown } => typeof block === 'object' && block !== null && block.type === 'tool_result')
    .map((block) => ({ toolUseId: block.tool_use_id, isError: block.is_error === true, text: textOf(block.content) }));
}

/** The id the fake gives the `block`-th tool call of answer `index`; stable, so tests can find its result. */
export function toolUseId(index: number, block: number): string {
  return `toolu_fake_${index}_${block}`;
}

/** The answer as a Messages API message object (`index` < 0: a side answer). */
export function messageOf(response: ScriptedResponse, index: number, model: string): Record<string, unknown> {
  const content = response.content.map((block, blockIndex) => (block.type === 'text' ? { type: 'text', text: block.text } : { type: 'tool_use', id: toolUseId(index, blockIndex), name: block.name, input: block.input }));
  const outputTokens = Math.max(1, Math.ceil(JSON.stringify(content).length / 4));
  return {
    id: index < 0 ? 'msg_fake_side' : `msg_fake_${index}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: response.content.some((block) => block.type === 'tool_use') ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: outputTokens },
  };
}

/** One server-sent event in the Messages API's framing: `event: TYPE` and its JSON `data`. */
function sse(data: { type: string } & Record<string, unknown>): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * The answer as the Messages API streams it: message_start; per block content_block_start, its
 * deltas (text_delta; input_json_delta for a tool call's input, in two pieces, as the API splits
 * JSON anywhere) and content_block_stop; message_delta with the stop reason; message_stop.
 */
export function streamEventsOf(response: ScriptedResponse, index: number, model: string): string[] {
  const message = messageOf(response, index, model);
  const blocks = message.content as Array<{ type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown }>;
  const events = [sse({ type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { input_tokens: 1, output_tokens: 1 } } }), sse({ type: 'ping' })];
  for (const [blockIndex, block] of blocks.entries()) {
    if (block.type === 'text') {
      events.push(sse({ type: 'content_block_start', index: blockIndex, content_block: { type: 'text', text: '' } }));
      events.push(sse({ type: 'content_block_delta', index: blockIndex, delta: { type: 'text_delta', text: block.text } }));
    } else {
      events.push(sse({ type: 'content_block_start', index: blockIndex, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } }));
      const json = JSON.stringify(block.input);
      const half = Math.ceil(json.length / 2);
      for (const piece of [json.slice(0, half), json.slice(half)]) {
        if (piece) events.push(sse({ type: 'content_block_delta', index: blockIndex, delta: { type: 'input_json_delta', partial_json: piece } }));
      }
    }
    events.push(sse({ type: 'content_block_stop', index: blockIndex }));
  }
  events.push(sse({ type: 'message_delta', delta: { stop_reason: message.stop_reason, stop_sequence: null }, usage: message.usage }));
  events.push(sse({ type: 'message_stop' }));
  return events;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function sendError(response: ServerResponse, status: number, type: string, message: string): void {
  sendJson(response, status, { type: 'error', error: { type, message } });
}

function presentedKey(request: IncomingMessage): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string') return header;
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
  return bearer?.[1];
}

/** Answers a POST /v1/messages request from the script, and fills in `record` with what it saw and did. */
function answerMessages(script: FakeScript, body: MessagesRequest, response: ServerResponse, record: FakeRequestRecord): void {
  const model = body.model ?? 'claude-fake';
  const messages = body.messages ?? [];
  const lastUser = [...messages].reverse().find((message) => message.role === 'user');
  Object.assign(record, {
    model,
    stream: body.stream === true,
    tools: (body.tools ?? []).map((tool) => tool.name ?? ''),
    lastUserText: textOf(lastUser?.content),
    toolResults: toolResultsOf(lastUser?.content),
  });
  let answer: ScriptedResponse;
  if ((body.tools ?? []).length === 0) {
    record.kind = 'side';
    answer = { content: [{ type: 'text', text: script.sideAnswer ?? 'OK' }] };
  } else {
    const index = messages.filter((message) => message.role === 'assistant').length;
    const position = positionOf(script, index);
    if (!position) {
      const total = script.turns.reduce((sum, turn) => sum + turn.responses.length, 0);
      record.error = `the script has ${total} answers and this request asks for answer ${index + 1}`;
      return refuse(response, record, 400, 'invalid_request_error');
    }
    const firstOfTurn = position.turn.responses[0] === position.response;
    if (firstOfTurn && position.turn.prompt !== undefined && !record.lastUserText!.includes(position.turn.prompt)) {
      record.error = `answer ${index + 1} starts a turn whose prompt should contain ${JSON.stringify(position.turn.prompt)}; the user said ${JSON.stringify(record.lastUserText!.slice(-200))}`;
      return refuse(response, record, 400, 'invalid_request_error');
    }
    record.kind = 'scripted';
    record.responseIndex = index;
    answer = position.response;
  }
  const answerIndex = record.responseIndex ?? -1;
  if (body.stream === true) {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const event of streamEventsOf(answer, answerIndex, model)) response.write(event);
    response.end();
  } else {
    sendJson(response, 200, messageOf(answer, answerIndex, model));
  }
}

function refuse(response: ServerResponse, record: FakeRequestRecord, status: number, type: string): void {
  record.kind = 'refused';
  record.status = status;
  sendError(response, status, type, `fake Anthropic API: ${record.error ?? 'refused'}`);
}

/** A server that answers the Messages API from `script`; not yet listening. */
export function createFakeAnthropicServer(script: FakeScript, options: FakeAnthropicOptions = {}): { server: Server; requests: FakeRequestRecord[] } {
  const problem = scriptProblem(script);
  if (problem) throw new Error(`fake Anthropic API: ${problem}`);
  const requests: FakeRequestRecord[] = [];
  const server = createServer((request, response) => {
    void (async () => {
      const rawBody = await readBody(request);
      const path = (request.url ?? '/').split('?')[0]!;
      const key = presentedKey(request);
      // `kind` and `status` are settled by whichever branch below answers.
      const record: FakeRequestRecord = { method: request.method ?? '', path, kind: 'refused', status: 200, apiKeyMatched: options.apiKey === undefined || key === options.apiKey };
      let body: unknown;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
        record.body = body;
      } catch {
        record.error = 'the body is not JSON';
      }
      if (record.error) {
        refuse(response, record, 400, 'invalid_request_error');
      } else if (!record.apiKeyMatched) {
        record.error = key === undefined ? 'no API key' : 'wrong API key';
        refuse(response, record, 401, 'authentication_error');
      } else if (request.method === 'POST' && path === '/v1/messages/count_tokens') {
        record.kind = 'count-tokens';
        sendJson(response, 200, { input_tokens: Math.max(1, Math.ceil(rawBody.length / 4)) });
      } else if (request.method === 'POST' && path === '/v1/messages') {
        answerMessages(script, (body ?? {}) as MessagesRequest, response, record);
      } else {
        record.error = `no such endpoint: ${request.method} ${path}`;
        refuse(response, record, 404, 'not_found_error');
      }
      requests.push(record);
      options.onRequest?.(record);
    })().catch((error: unknown) => {
      if (!response.headersSent) sendError(response, 500, 'api_error', `fake Anthropic API: ${String(error)}`);
      else response.end();
    });
  });
  return { server, requests };
}

/** Starts the fake on 127.0.0.1 (port 0: one the system picks). */
export async function startFakeAnthropic(script: FakeScript, options: FakeAnthropicOptions & { port?: number } = {}): Promise<FakeAnthropic> {
  const { server, requests } = createFakeAnthropicServer(script, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
