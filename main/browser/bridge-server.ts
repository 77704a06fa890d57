// The WebSocket at /bridge that carries the contract between the page and the backend (protocol.ts).
// The HTTP upgrade is the one door: it is accepted only with the app's Host, the app's Origin and, in
// Sec-WebSocket-Protocol, `keyport.v1` plus a live session this host issued (request-checks.ts says why
// that is not a cookie); anything else gets a 403 before any WebSocket exists. The server selects
// `keyport.v1`, so the session is never echoed in the response. A session holds at most one open socket:
// a second upgrade while its socket is open gets a 409 (a reload works: the old page's socket has closed
// by then). A socket closes (SESSION_ENDED) when its session expires or is revoked. Once open, every
// frame is validated (protocol.ts), calls go to the backend's handler table, and backend events go to
// every open socket (each of them passed the same door). A page also says whether it is shown
// ({visibility}, protocol.ts); a socket counts as shown until its page says it is hidden.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import type { Backend } from '../backend/backend';
import { eventNames } from '../../preload/contract';
import type { EventName, EventPayloads, Result, Unsubscribe } from '../../preload/contract';
import { eventFrame, parseIncoming, replyFrame } from './protocol';
import {
  BRIDGE_PROTOCOL,
  hostIsApp,
  originIsApp,
  sessionFromProtocols,
  withSecurityHeaders,
} from './request-checks';
import type { Session, Sessions } from './secrets';

export const BRIDGE_SOCKET_PATH = '/bridge';
/** Far above any contract argument; a bigger frame closes the socket (1009). */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Calls one socket may have in flight; more are answered RESOURCE_EXHAUSTED. */
export const MAX_PENDING_CALLS = 64;
/** The close code for a socket whose session expired or was revoked (private-use range, RFC 6455 7.4.2). */
export const SESSION_ENDED = 4001;
/** setTimeout's largest delay; a longer session is re-checked when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface BridgeServerOptions {
  backend: Backend;
  sessions: Sessions;
  /** The port the host listens on, known once it listens. */
  port(): number;
  log(line: string): void;
}

export interface BridgeServer {
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open sockets. */
  readonly size: number;
  /** Open sockets whose page is shown (it has not said it is hidden). */
  readonly shown: number;
  /** Closes every open socket with SESSION_ENDED (the caller has revoked the sessions). */
  endSessions(): void;
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = {
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  421: 'Misdirected Request',
};

/** Answers an upgrade request with a plain HTTP error and drops the connection. */
function refuseUpgrade(socket: Duplex, status: number): void {
  const body = `${STATUS_TEXT[status] ?? 'Refused'}.\n`;
  const headers = withSecurityHeaders({
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Refused'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`,
  );
}

function internalError(): Result<never> {
  return {
    ok: false,
    error: { code: 'INTERNAL', message: 'Keyport Connect failed to handle that request.', details: {} },
  };
}

export function createBridgeServer(options: BridgeServerOptions): BridgeServer {
  const { backend, sessions, log } = options;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    clientTracking: true,
    // Only reached after handleUpgrade's checks, which require exactly this protocol to be offered.
    handleProtocols: (protocols) => (protocols.has(BRIDGE_PROTOCOL) ? BRIDGE_PROTOCOL : false),
  });
  /** Each session's one socket. Only an OPEN socket holds its session: a closing one cannot call. */
  const live = new Map<Session, WebSocket>();
  /** Sockets whose page said it is hidden (document.visibilityState). */
  const hidden = new WeakSet<WebSocket>();

  /** Whether `ws` may still act for `session`: open, and the session neither expired nor revoked. */
  function mayAct(ws: WebSocket, session: Session): boolean {
    if (ws.readyState !== ws.OPEN) return false;
    if (sessions.isLive(session)) return true;
    ws.close(SESSION_ENDED, 'Session ended.');
    return false;
  }

  function broadcast<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    const frame = eventFrame(event, payload);
    for (const [session, client] of live) if (mayAct(client, session)) client.send(frame);
  }
  const unsubscribes: Unsubscribe[] = eventNames.map((event) =>
    backend.on(event, (payload) => broadcast(event, payload)),
  );

  function serve(ws: WebSocket, session: Session): void {
    live.set(session, ws);
    let expiry: NodeJS.Timeout | undefined;
    const watchExpiry = () => {
      expiry = setTimeout(
        () => {
          if (mayAct(ws, session)) watchExpiry();
        },
        Math.min(sessions.remainingMs(session), MAX_TIMER_MS),
      );
      expiry.unref();
    };
    watchExpiry();
    let pending = 0;
    const send = (frame: string) => {
      if (ws.readyState === ws.OPEN) ws.send(frame);
    };
    ws.on('error', (error) => log(`bridge socket error: ${error.message}`));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // Frames that arrive after the server started closing (a fatal frame, an ended session) are dropped.
      if (!mayAct(ws, session)) return;
      if (isBinary) {
        ws.close(1003, 'Text frames only.');
        return;
      }
      // nodebuffer (the default binaryType): a Buffer, or Buffer[] for a fragmented message.
      const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Uint8Array)).toString();
      const incoming = parseIncoming(text);
      if (incoming.kind === 'fatal') {
        ws.close(1008, incoming.reason);
        return;
      }
      if (incoming.kind === 'visibility') {
        if (incoming.visibility === 'hidden') hidden.add(ws);
        else hidden.delete(ws);
        return;
      }
      if (incoming.kind === 'invalid') {
        send(replyFrame(incoming.id, { ok: false, error: incoming.error }));
        return;
      }
      const { id, method, argument } = incoming.call;
      if (pending >= MAX_PENDING_CALLS) {
        send(
          replyFrame(id, {
            ok: false,
            error: { code: 'RESOURCE_EXHAUSTED', message: 'Too many calls at once; try again.', details: {} },
          }),
        );
        return;
      }
      pending += 1;
      const handler = backend.handlers[method] as (argument?: unknown) => Promise<Result<unknown>>;
      // Handlers return a Result and never throw; a throw anyway is answered, not left hanging.
      Promise.resolve()
        .then(() => handler(argument))
        .catch((error: unknown) => {
          log(`handler ${method} threw: ${error instanceof Error ? error.message : String(error)}`);
          return internalError();
        })
        .then((result) => {
          pending -= 1;
          send(replyFrame(id, result));
        });
    });
    ws.on('close', () => {
      clearTimeout(expiry);
      if (live.get(session) === ws) live.delete(session);
      log(`bridge disconnected (${wss.clients.size} open)`);
    });
    log(`bridge connected (${wss.clients.size} open)`);
  }

  /** The session an upgrade may open a socket for, or the status it is refused with. */
  function admit(request: IncomingMessage): Session | 403 | 404 | 409 | 421 {
    const port = options.port();
    if (!hostIsApp(request.headers, port)) return 421;
    if ((request.url ?? '').split('?', 1)[0] !== BRIDGE_SOCKET_PATH) return 404;
    if (!originIsApp(request.headers, port)) return 403;
    const session = sessions.find(sessionFromProtocols(request.headers));
    if (!session) return 403;
    const holder = live.get(session);
    return holder && holder.readyState === holder.OPEN ? 409 : session;
  }

  return {
    handleUpgrade(request, socket, head) {
      socket.on('error', () => socket.destroy());
      const admitted = admit(request);
      if (typeof admitted === 'number') {
        log(`bridge upgrade refused (${admitted})`);
        refuseUpgrade(socket, admitted);
        return;
      }
      // Without verifyClient, ws completes (or refuses) the handshake before handleUpgrade returns, so no
      // second upgrade for this session can slip in between admit() and live.set in serve().
      wss.handleUpgrade(request, socket, head, (ws) => serve(ws, admitted));
    },
    endSessions() {
      for (const client of wss.clients) client.close(SESSION_ENDED, 'Session ended.');
    },
    get size() {
      return wss.clients.size;
    },
    get shown() {
      let count = 0;
      for (const client of wss.clients)
        if (client.readyState === client.OPEN && !hidden.has(client)) count += 1;
      return count;
    },
    async close() {
      for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
      const clients = [...wss.clients];
      for (const client of clients) client.close(1001, 'Keyport Connect is closing.');
      // A page that does not answer the close handshake promptly is cut off.
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          for (const client of clients) client.terminate();
          resolve();
        }, 500);
        const check = () => {
          if (clients.every((client) => client.readyState === client.CLOSED)) {
            clearTimeout(deadline);
            resolve();
          }
        };
        for (const client of clients) client.once('close', check);
        check();
      });
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
