// How `keyport-connect open-url LINK` hands a keyport:// link to the app that runs (the browser host has
// no single-instance lock of Electron's): a UNIX socket in KEYPORT_HOME, `connect/links.sock`, 0600 in a
// 0700 directory of the user's. Node has no SO_PEERCRED, so those modes are the check on who connects: only
// this uid (and root) can reach the socket.
//
// The protocol, one link per connection: the client sends the link and "\n" (at most MAX_DEEP_LINK_LENGTH
// bytes before it); the app answers one JSON line, `{"ok":true}` once the link is held for its screen, or
// `{"ok":false,"code","reason","message"}` for a refused one, and closes. Anything longer, or silence past
// IDLE_MS, closes the connection with a refusal. The link's text is never logged.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { DeepLinkEvent } from '../../preload/contract';
import { KeyportError } from '../../proto/errors';
import { MAX_DEEP_LINK_LENGTH } from './deep-link';

/** The socket of the app running for a Keyport home (KEYPORT_HOME, ~/.keyport by default). */
export function linkSocketPath(keyportHome: string): string {
  return join(keyportHome, 'connect', 'links.sock');
}

/** How long a connection may stay silent before its request line. */
export const IDLE_MS = 10_000;
/** sun_path is 108 bytes on Linux, 104 on macOS and the BSDs, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;
const MAX_CONNECTIONS = 8;

export type LinkAnswer = { ok: true } | { ok: false; code: string; reason?: string; message: string };

export interface LinkSocket {
  path: string;
  close(): Promise<void>;
}

/** Listens for links; each goes to `open` (the backend's openDeepLink), whose verdict is answered. */
export function listenForLinks(
  keyportHome: string,
  open: (link: string) => Promise<DeepLinkEvent>,
): Promise<LinkSocket> {
  return listenOnPrivateSocket(linkSocketPath(keyportHome), 'link', (socket) => serve(socket, open));
}

/**
 * A UNIX socket of the app's in KEYPORT_HOME/connect (0600 in a 0700 directory), each connection handed
 * to `serve`: the link socket's, and the relogin socket's (relogin-socket.ts). `what` names it in errors.
 */
export async function listenOnPrivateSocket(
  path: string,
  what: string,
  serveConnection: (socket: Socket) => void,
): Promise<LinkSocket> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The ${what} socket ${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a UNIX socket allows: use a shorter KEYPORT_HOME.`,
    );
  }
  await preparePrivateDirectory(dirname(path));
  await clearStaleSocket(path);
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serveConnection(socket);
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    throw new KeyportError('UNAVAILABLE', `Could not listen on the ${what} socket ${path}: ${error.message}`);
  });
  // The directory is 0700, so nobody else could reach the socket in the instant before this chmod.
  let created: Stats;
  try {
    await chmod(path, 0o600);
    created = await lstat(path);
  } catch (error) {
    await closeServer(server, connections);
    throw new KeyportError('UNAVAILABLE', `Could not secure ${path}: ${String(error)}`);
  }
  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= (async () => {
        await closeServer(server, connections);
        // Only our own socket: a later app may have replaced one we no longer listen on.
        const now = await lstat(path).catch(() => undefined);
        if (now?.isSocket() && now.ino === created.ino && now.dev === created.dev) {
          await unlink(path).catch(() => {});
        }
      })();
      return closing;
    },
  };
}

function serve(socket: Socket, open: (link: string) => Promise<DeepLinkEvent>): void {
  let received = '';
  let done = false;
  const answer = (value: LinkAnswer) => {
    done = true;
    socket.end(`${JSON.stringify(value)}\n`);
  };
  socket.setEncoding('utf8');
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (done) return;
    received += chunk;
    const newline = received.indexOf('\n');
    if (newline < 0 && received.length <= MAX_DEEP_LINK_LENGTH) return;
    if (newline < 0 || newline > MAX_DEEP_LINK_LENGTH) {
      answer({
        ok: false,
        code: 'INVALID_ARGUMENT',
        reason: 'malformed',
        message: `The link is longer than ${MAX_DEEP_LINK_LENGTH} characters.`,
      });
      return;
    }
    done = true;
    socket.pause();
    void open(received.slice(0, newline)).then((event) => {
      if (socket.destroyed) return;
      answer(
        event.kind === 'refused'
          ? {
              ok: false,
              code: event.error.code,
              ...(event.error.details.deepLink ? { reason: event.error.details.deepLink } : {}),
              message: event.error.message,
            }
          : { ok: true },
      );
    });
  });
}

export type LinkRefusal = Extract<LinkAnswer, { ok: false }>;
export type SendResult = { delivered: true } | { delivered: false; answer?: LinkRefusal };

/**
 * Sends `link` to the app running for `keyportHome`. `{delivered: false}` without an answer: no app
 * listens (no socket, or a stale one). Throws a KeyportError when an app answered with nonsense or not at all.
 */
export function sendLink(keyportHome: string, link: string, timeoutMs = 15_000): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(linkSocketPath(keyportHome));
    let reply = '';
    let connected = false;
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new KeyportError('UNAVAILABLE', 'Keyport Connect did not answer in time.'));
    });
    socket.once('connect', () => {
      connected = true;
      socket.write(`${link}\n`);
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.length > 64 * 1024) socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) {
        resolve({ delivered: false });
        return;
      }
      reject(new KeyportError('UNAVAILABLE', `Could not reach Keyport Connect: ${error.message}`));
    });
    socket.once('close', () => {
      if (!connected) return;
      let answer: LinkAnswer;
      try {
        answer = JSON.parse(reply.trim()) as LinkAnswer;
      } catch {
        reject(new KeyportError('UNAVAILABLE', 'Keyport Connect gave no answer about the link.'));
        return;
      }
      if (answer?.ok === true) resolve({ delivered: true });
      else if (answer?.ok === false && typeof answer.message === 'string')
        resolve({ delivered: false, answer });
      else reject(new KeyportError('UNAVAILABLE', 'Keyport Connect gave no answer about the link.'));
    });
  });
}

async function closeServer(server: Server, connections: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of connections) socket.destroy();
  await closed;
}

async function preparePrivateDirectory(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const stats = await lstat(directory);
  const owner = process.getuid?.();
  if (!stats.isDirectory() || (owner !== undefined && stats.uid !== owner) || (stats.mode & 0o077) !== 0) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `${directory} must be a directory of this user's that no one else can enter (chmod 700).`,
    );
  }
}

/** A socket left by an app that died is removed; a live app's is not (this one then does not listen). */
async function clearStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!stats) return;
  if (!stats.isSocket()) {
    throw new KeyportError('PRECONDITION_FAILED', `${path} exists and is not a socket: remove it.`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new KeyportError('ALREADY_EXISTS', `Another Keyport Connect listens on ${path}.`);
  await unlink(path).catch(() => {});
}
