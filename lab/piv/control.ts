// The virtual card's control socket: JSON lines both ways over a 0600 UNIX socket, the way a test or
// the demo plays the person holding the card.
//   in:  {"touch":"approve"|"deny"}            answer the touch request that is waiting
//        {"touchMode":"auto"|"manual"|"denied"}
//        {"card":"remove"|"insert"}            pull the card out of the reader / put it back
//        {"stats":"get"|"reset"}               APDUs the card answered, by instruction (hex)
//   out: {"reply":…,"ok":true|false,…}         one per request, in order
//        {"event":"touch-needed"} {"event":"touch","outcome":…} {"event":"connected"}
//        {"event":"disconnected"} {"event":"power","state":…} {"event":"atr"}
import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export type ControlRequest =
  | { touch: 'approve' | 'deny' }
  | { touchMode: 'auto' | 'manual' | 'denied' }
  | { card: 'remove' | 'insert' }
  | { stats: 'get' | 'reset' };

export type ControlReply = { reply: string; ok: boolean; error?: string } & Record<string, unknown>;
export type ControlEvent = { event: string } & Record<string, unknown>;

// sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
export const MAX_UNIX_SOCKET_PATH = 107;

export function parseControlRequest(line: string): ControlRequest | string {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  const m = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
  if (m.touch === 'approve' || m.touch === 'deny') return { touch: m.touch };
  if (m.touchMode === 'auto' || m.touchMode === 'manual' || m.touchMode === 'denied') {
    return { touchMode: m.touchMode };
  }
  if (m.card === 'remove' || m.card === 'insert') return { card: m.card };
  if (m.stats === 'get' || m.stats === 'reset') return { stats: m.stats };
  return 'expected {"touch":…}, {"touchMode":…}, {"card":"remove"|"insert"} or {"stats":"get"|"reset"}';
}

export interface ControlServer {
  /** Sends an event line to every connected controller. */
  broadcast(event: ControlEvent): void;
  close(): Promise<void>;
}

export async function serveControl(
  path: string,
  handle: (request: ControlRequest) => Promise<ControlReply>,
): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) throw new Error(`socket path too long: ${path}`);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setEncoding('utf8');
    let text = '';
    let queue: Promise<void> = Promise.resolve();
    const write = (value: object): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(value)}\n`);
    };
    socket.on('data', (chunk: string) => {
      text += chunk;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const line = text.slice(0, nl).trim();
        text = text.slice(nl + 1);
        if (!line) continue;
        const request = parseControlRequest(line);
        queue = queue.then(async () => {
          if (typeof request === 'string') write({ reply: 'error', ok: false, error: request });
          else write(await handle(request));
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    broadcast(event) {
      const line = `${JSON.stringify(event)}\n`;
      for (const socket of sockets) if (!socket.destroyed) socket.write(line);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        unlinkSync(path);
      } catch {
        // net.Server removed it already
      }
    },
  };
}

export interface ControlClient {
  /** Every event line the card sends, as 'event' and under its own name. */
  events: EventEmitter;
  request(request: ControlRequest): Promise<ControlReply>;
  close(): void;
}

export async function connectControl(path: string): Promise<ControlClient> {
  const socket = createConnection(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const events = new EventEmitter();
  const waiting: Array<{ resolve: (reply: ControlReply) => void; reject: (error: Error) => void }> = [];
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      const message = JSON.parse(line) as ControlReply | ControlEvent;
      if (isReply(message)) waiting.shift()?.resolve(message);
      else {
        events.emit('event', message);
        events.emit(message.event, message);
      }
    }
  });
  const failAll = (error: Error): void => {
    for (const w of waiting.splice(0)) w.reject(error);
  };
  socket.on('error', (error) => failAll(error));
  socket.on('close', () => failAll(new Error('the card control socket closed')));
  return {
    events,
    request(request) {
      return new Promise((resolve, reject) => {
        if (socket.destroyed) {
          reject(new Error('the card control socket is closed'));
          return;
        }
        waiting.push({ resolve, reject });
        socket.write(`${JSON.stringify(request)}\n`);
      });
    },
    close: () => socket.destroy(),
  };
}

function isReply(message: ControlReply | ControlEvent): message is ControlReply {
  return typeof (message as ControlReply).reply === 'string';
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
    else throw new Error(`${path} exists and is not a socket`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
