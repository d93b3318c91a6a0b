// `agent serve`: a client's channel (the stdio of its `docker exec`) relayed to the resident agent's
// Unix socket, line for line. The relay owns nothing: it only keeps the ids of the requests in
// flight, so that if the resident agent dies under them (it is restarted by `agent init`) each
// gets an `agent-restarted` error instead of waiting for ever.
import { connect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { LineSplitter } from '../core/jsonLines';
import { MAX_LINE_BYTES, encodeMessage, parseAgentMessage } from '../core/protocol';
import type { AgentMessage } from '../core/protocol';

/** Clients number their requests from 1: id 0 is the relay's own. */
const FAILPOINT_REQUEST_ID = 0;

export interface RelayOptions {
  socketPath: string;
  /** How long to wait for the socket to appear (the resident agent is starting or restarting). */
  connectTimeoutMs?: number;
  /** Sent first when set: the channel's fault injection (tests; see src/agent/failpoint.ts). */
  failpoint?: string;
  /**
   * Called once when the socket is still missing after a few seconds: a container started by an
   * earlier Clud has no resident agent of its own (its init predates it), so the first client
   * starts one, which then serves every client of that container.
   */
  startDaemon?: () => void;
}

/** How long a missing socket is waited for before the relay starts a resident agent itself. */
const START_DAEMON_AFTER_MS = 3_000;

/** Relays until the client's input ends (then the socket is closed) or the agent goes away. */
export async function relay(input: Readable, output: Writable, options: RelayOptions): Promise<void> {
  const inFlight = new Set<number>();
  const send = (message: AgentMessage) => {
    if (!output.writableEnded) output.write(encodeMessage(message));
  };
  const socket = await connectWithin(options.socketPath, options.connectTimeoutMs ?? 60_000, options.startDaemon).catch((error: unknown) => error as Error);
  if (socket instanceof Error) {
    // Nobody to relay to: every request gets the reason, so the client can say it and exit.
    answerAll(input, send, 'agent-unavailable', `the resident sync agent is not running (${socket.message}); run \`clud logs\` to see why, or \`clud up\``);
    await new Promise((resolve) => input.once('end', resolve));
    return;
  }
  // Request ids from the client, as far as they can be read; lines pass through unchanged.
  const fromClient = new LineSplitter(MAX_LINE_BYTES);
  // Whatever the agent sends passes; the client's own limit decides what it accepts.
  const fromAgent = new LineSplitter(Number.MAX_SAFE_INTEGER);
  if (options.failpoint) socket.write(encodeMessage({ id: FAILPOINT_REQUEST_ID, method: 'failpoint', params: { spec: options.failpoint } }));

  input.on('data', (chunk: Buffer) => {
    for (const event of fromClient.push(chunk)) {
      if (event.kind === 'overflow') continue; // the agent's own splitter reports it
      const id = readId(event.line);
      if (id !== undefined) inFlight.add(id);
    }
    socket.write(chunk);
  });
  socket.on('data', (chunk: Buffer) => {
    for (const event of fromAgent.push(chunk)) {
      if (event.kind === 'overflow') continue;
      const parsed = parseAgentMessage(event.line);
      if (parsed.ok && (parsed.value.kind === 'result' || parsed.value.kind === 'error') && parsed.value.id !== null) {
        // The answer to the relay's own failpoint request is not the client's.
        if (parsed.value.id === FAILPOINT_REQUEST_ID && options.failpoint) continue;
        inFlight.delete(parsed.value.id);
      }
      output.write(event.line + '\n');
    }
  });

  await new Promise<void>((resolve) => {
    input.on('end', () => {
      // The agent answers what it has started; then it closes its end.
      socket.end();
    });
    socket.on('close', () => {
      for (const id of inFlight) send({ kind: 'error', id, code: 'agent-restarted', message: 'the resident sync agent stopped during this request and is being restarted; run the command again' });
      inFlight.clear();
      resolve();
    });
    socket.on('error', () => {
      // 'close' follows and answers what is in flight.
    });
  });
}

function connectWithin(socketPath: string, timeoutMs: number, startDaemon?: () => void): Promise<Socket> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let daemonStarted = false;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (startDaemon && !daemonStarted && Date.now() - started >= START_DAEMON_AFTER_MS) {
        daemonStarted = true;
        startDaemon();
      }
      const socket = connect(socketPath);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        socket.destroy();
        if (Date.now() >= deadline) reject(error);
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

function answerAll(input: Readable, send: (message: AgentMessage) => void, code: 'agent-unavailable', message: string): void {
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  input.on('data', (chunk: Buffer) => {
    for (const event of splitter.push(chunk)) {
      if (event.kind === 'line') send({ kind: 'error', id: readId(event.line) ?? null, code, message });
    }
  });
}

function readId(line: string): number | undefined {
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : undefined;
  } catch {
    return undefined;
  }
}
