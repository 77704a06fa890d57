// keyport's ssh-agent: serves the session key to OpenSSH (ssh, ssh-add, ssh-keygen -Y) over a UNIX socket
// of its own, so that the private key never has to be written to a file for ssh (issue 10, "The key seam").
// The identities come from a provider the caller gives, asked again at every request, so the agent follows
// the current profile (a relogin, a logout) without a restart. Signatures go through the SessionSigner:
// the agent never sees private key bytes, and a key on a card works exactly like a software one.
//
// Who may connect: the socket is 0600 in a 0700 directory owned by this user, so the kernel lets only this
// user (and root) connect. Node has no SO_PEERCRED / getpeereid, so the agent cannot check the peer's uid
// itself; the file modes are the check, as they are for OpenSSH's ssh-agent where the platform lacks one.
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { KeyportError } from '../../proto/errors';
import type { SessionSigner } from '../keystore/signer';
import type { SessionKeyAlgorithm } from '../keystore/session-key';
import {
  AgentProtocolError,
  FrameDecoder,
  MAX_MESSAGE_BYTES,
  encodeFailure,
  encodeIdentitiesAnswer,
  encodeSignResponse,
  frame,
  parseAuthorizedKeyLine,
  parseRequest,
  sameBytes,
  sshSignatureBlob,
} from './protocol';
import type { AgentRequest, EncodedIdentity } from './protocol';

/** One key the agent offers: the session's signer and, normally, its OpenSSH user certificate. */
export interface AgentIdentity {
  signer: SessionSigner;
  /** The certificate line ("<type> <base64> [key id]"), e.g. `Profile.sshCertificate`. */
  certificate?: string;
  /** What `ssh-add -l` shows beside it. */
  comment?: string;
}

/** The identities to offer now: called at every request (identities and sign). */
export type IdentityProvider = () => Promise<readonly AgentIdentity[]> | readonly AgentIdentity[];

export type SshAgentEvent =
  /** A connection sent bytes that are not the protocol (or an oversize frame) and was closed. */
  | { kind: 'malformed'; error: AgentProtocolError }
  /** An add, remove, lock, unlock, or an unknown message or extension: answered with FAILURE. */
  | { kind: 'refused'; request: string }
  /** A sign request for a key the agent does not hold: FAILURE. */
  | { kind: 'unknown-key' }
  | { kind: 'signed'; algorithm: SessionKeyAlgorithm; certificate: boolean }
  /** The signer failed (a locked keychain, a card pulled out, no touch): FAILURE. */
  | { kind: 'sign-failed'; error: unknown }
  /** The provider failed, or gave an identity that cannot be served (a certificate for another key). */
  | { kind: 'identities-failed'; error: unknown }
  /** A connection over maxConnections, closed at once. */
  | { kind: 'connection-refused' };

export interface SshAgentOptions {
  /**
   * The directory the socket goes in, e.g. `<KEYPORT_HOME>/agent`. Made 0700 if missing; an existing one
   * must be a directory (not a link) owned by this user with no group or other permissions.
   */
  directory: string;
  /** Default `agent.sock`. */
  socketName?: string;
  identities: IdentityProvider;
  /**
   * Also list the plain public key beside its certificate (default false: servers trust the cluster's CA,
   * and a plain key only costs ssh a refused try). An identity without a certificate is always listed plain.
   */
  listPlainKeys?: boolean;
  /** Connections served at once; more are closed on arrival. Default 32. */
  maxConnections?: number;
  /** Default MAX_MESSAGE_BYTES (256 KiB), as OpenSSH. */
  maxMessageBytes?: number;
  onEvent?: (event: SshAgentEvent) => void;
}

export interface SshAgent {
  /** For SSH_AUTH_SOCK. */
  readonly socketPath: string;
  /** Stops listening, closes every connection and removes the socket (if it is still this agent's). */
  close(): Promise<void>;
}

export const DEFAULT_SOCKET_NAME = 'agent.sock';
const DEFAULT_MAX_CONNECTIONS = 32;
/** sun_path is 108 bytes on Linux, 104 on macOS and the BSDs, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Where the agent's socket directory goes under a Keyport home (KEYPORT_HOME, ~/.keyport by default). */
export function agentDirectory(keyportHome: string): string {
  return join(keyportHome, 'agent');
}

/** Starts the agent; resolves once the socket accepts connections (0600, in its 0700 directory). */
export async function startSshAgent(options: SshAgentOptions): Promise<SshAgent> {
  if (process.platform === 'win32') {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      "keyport's ssh-agent needs UNIX sockets; on Windows, OpenSSH's agent uses a named pipe, which keyport does not serve yet.",
    );
  }
  const socketPath = join(options.directory, options.socketName ?? DEFAULT_SOCKET_NAME);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The agent socket path ${socketPath} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a UNIX socket allows. Use a shorter KEYPORT_HOME.`,
      { fieldPath: 'directory' },
    );
  }
  await preparePrivateDirectory(options.directory);
  await clearStaleSocket(socketPath);

  const handler = new RequestHandler(options);
  const connections = new Set<Socket>();
  const server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serveConnection(socket, handler, options.maxMessageBytes ?? MAX_MESSAGE_BYTES);
  });
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.on('drop', () => handler.emit({ kind: 'connection-refused' }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE') {
      throw new KeyportError('ALREADY_EXISTS', `Another agent took ${socketPath} while this one started.`);
    }
    throw new KeyportError('UNAVAILABLE', `Could not listen on ${socketPath}: ${error.message}`);
  });
  // The directory is 0700, so nobody else could reach the socket in the instant before this chmod.
  let created: Stats;
  try {
    await chmod(socketPath, 0o600);
    created = await lstat(socketPath);
  } catch (error) {
    await closeServer(server, connections);
    throw new KeyportError(
      'UNAVAILABLE',
      `Could not secure the agent socket ${socketPath}: ${String(error)}`,
    );
  }

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    close() {
      closing ??= (async () => {
        await closeServer(server, connections);
        // Only our own socket: a later agent may have replaced a socket we no longer listen on.
        const now = await lstat(socketPath).catch(() => undefined);
        if (now && now.isSocket() && now.ino === created.ino && now.dev === created.dev) {
          await unlink(socketPath).catch(() => {});
        }
      })();
      return closing;
    },
  };
}

async function closeServer(server: Server, connections: Set<Socket>): Promise<void> {
  // libuv removes the socket's path when the server closes (whatever file is there by then: a second agent
  // refuses to start over a live socket, so it is ours unless someone removed it by hand). close() removes it
  // too, checking the inode first, for a platform where libuv would not.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of connections) socket.destroy();
  await closed;
}

async function preparePrivateDirectory(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const stats = await lstat(directory);
  const owner = process.getuid?.();
  if (!stats.isDirectory()) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `The agent directory ${directory} is not a directory (or is a link).`,
      {
        fieldPath: 'directory',
      },
    );
  }
  if (owner !== undefined && stats.uid !== owner) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `The agent directory ${directory} belongs to uid ${stats.uid}, not to this user: choose a directory of your own.`,
      { fieldPath: 'directory' },
    );
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `The agent directory ${directory} is open to others (mode ${(stats.mode & 0o777).toString(8)}): run chmod 700 on it.`,
      { fieldPath: 'directory' },
    );
  }
}

/** A socket left by an agent that died is removed; a live agent's, or anything that is not a socket, is not. */
async function clearStaleSocket(socketPath: string): Promise<void> {
  const stats = await lstat(socketPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!stats) return;
  if (!stats.isSocket()) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `${socketPath} exists and is not a socket: remove it or choose another directory.`,
    );
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new KeyportError('ALREADY_EXISTS', `An agent is already serving ${socketPath}.`);
  await unlink(socketPath).catch(() => {});
}

/**
 * One connection: messages are answered one at a time, in order (the protocol is request, answer). While a
 * request is handled the socket is paused, so a client that pipelines cannot make the agent buffer more
 * than one read's worth. A message that is not the protocol closes this connection and no other.
 */
function serveConnection(socket: Socket, handler: RequestHandler, maxMessageBytes: number): void {
  const decoder = new FrameDecoder(maxMessageBytes);
  const pending: Uint8Array[] = [];
  let busy = false;

  const fail = (error: unknown): void => {
    socket.destroy();
    if (error instanceof AgentProtocolError) handler.emit({ kind: 'malformed', error });
  };

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    socket.pause();
    try {
      for (let message = pending.shift(); message && !socket.destroyed; message = pending.shift()) {
        let answer: Uint8Array;
        try {
          answer = await handler.answer(message);
        } finally {
          // A refused add carried a private key: its bytes are wiped, not left for the collector.
          message.fill(0);
        }
        // A client that sends requests and never reads the answers is not answered faster than it reads:
        // the socket stays paused until the answer is flushed.
        if (!socket.destroyed && !socket.write(frame(answer))) await flushed(socket);
      }
    } catch (error) {
      fail(error);
    } finally {
      for (const message of pending.splice(0)) message.fill(0);
      busy = false;
      if (!socket.destroyed) socket.resume();
    }
  };

  socket.on('data', (chunk: Buffer) => {
    try {
      pending.push(...decoder.push(chunk));
    } catch (error) {
      fail(error);
      return;
    } finally {
      // The decoder holds copies of what it needs; the read's own bytes are not left behind.
      chunk.fill(0);
    }
    if (pending.length > 0) void drain();
  });
  // A client that goes away mid-answer is not an error of the agent's.
  socket.on('error', () => socket.destroy());
}

function flushed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

interface ServedIdentity {
  signer: SessionSigner;
  publicKeyBlob: Uint8Array;
  listed: EncodedIdentity[];
}

class RequestHandler {
  constructor(private readonly options: SshAgentOptions) {}

  /** The answer to one message; throws AgentProtocolError for a message that is not the protocol. */
  async answer(message: Uint8Array): Promise<Uint8Array> {
    const request = parseRequest(message);
    switch (request.kind) {
      case 'request-identities': {
        const identities = await this.identities();
        return encodeIdentitiesAnswer(identities?.flatMap((identity) => identity.listed) ?? []);
      }
      case 'sign':
        return this.sign(request);
      case 'extension':
        // §3.8: an agent MUST answer an extension it does not support with SSH_AGENT_FAILURE
        // (SSH_AGENT_EXTENSION_FAILURE is for a supported one that failed). OpenSSH's ssh sends
        // session-bind@openssh.com before it authenticates and reads FAILURE as "agent does not bind";
        // it reads 28 as a malformed answer (authfd.c decode_reply), which only costs a debug line.
        this.emit({ kind: 'refused', request: `extension ${request.name.slice(0, 64)}` });
        return encodeFailure();
      case 'key-management':
        this.emit({ kind: 'refused', request: request.name });
        return encodeFailure();
      case 'unknown':
        this.emit({ kind: 'refused', request: `message type ${request.type}` });
        return encodeFailure();
    }
  }

  private async sign(request: Extract<AgentRequest, { kind: 'sign' }>): Promise<Uint8Array> {
    const identities = await this.identities();
    if (!identities) return encodeFailure();
    // The key named by its certificate as listed, or by its plain public key (ssh-keygen -Y sign -f key.pub
    // asks that way, having matched the listed certificate by its key).
    const identity = identities.find(
      (candidate) =>
        sameBytes(candidate.publicKeyBlob, request.keyBlob) ||
        candidate.listed.some((listed) => sameBytes(listed.keyBlob, request.keyBlob)),
    );
    if (!identity) {
      this.emit({ kind: 'unknown-key' });
      return encodeFailure();
    }
    // The SSH_AGENT_RSA_SHA2_* flags choose an RSA hash; a P-256 key always signs with SHA-256 (RFC 5656
    // §6.2.1) and Ed25519 has no choice, so they are ignored, as OpenSSH's agent ignores them for these keys.
    let signature: Buffer;
    try {
      signature = await identity.signer.sign(Buffer.from(request.data));
    } catch (error) {
      this.emit({ kind: 'sign-failed', error });
      return encodeFailure();
    }
    try {
      const blob = sshSignatureBlob(identity.signer.algorithm, signature);
      this.emit({
        kind: 'signed',
        algorithm: identity.signer.algorithm,
        certificate: !sameBytes(identity.publicKeyBlob, request.keyBlob),
      });
      return encodeSignResponse(blob);
    } catch (error) {
      this.emit({ kind: 'sign-failed', error });
      return encodeFailure();
    }
  }

  /** The provider's identities as served now; undefined (and an event) when the provider fails. */
  private async identities(): Promise<ServedIdentity[] | undefined> {
    let given: readonly AgentIdentity[];
    try {
      given = await this.options.identities();
    } catch (error) {
      this.emit({ kind: 'identities-failed', error });
      return undefined;
    }
    const served: ServedIdentity[] = [];
    for (const identity of given) {
      try {
        served.push(this.serve(identity));
      } catch (error) {
        this.emit({ kind: 'identities-failed', error });
      }
    }
    return served;
  }

  private serve(identity: AgentIdentity): ServedIdentity {
    const key = parseAuthorizedKeyLine(identity.signer.sshPublicKey);
    const comment = identity.comment ?? 'keyport';
    const listed: EncodedIdentity[] = [];
    if (identity.certificate !== undefined) {
      const certificate = parseAuthorizedKeyLine(identity.certificate);
      if (!certificate.parsed.certificate || !sameBytes(certificate.parsed.publicKeyBlob, key.blob)) {
        // A certificate for another key (a profile rewritten by a new login, say) would be listed and then
        // fail every signature: it is not offered at all.
        throw new KeyportError(
          'PRECONDITION_FAILED',
          "The session's SSH certificate is not for its session key: log in again.",
        );
      }
      listed.push({ keyBlob: certificate.blob, comment });
    }
    if (identity.certificate === undefined || this.options.listPlainKeys) {
      listed.push({ keyBlob: key.blob, comment });
    }
    return { signer: identity.signer, publicKeyBlob: key.blob, listed };
  }

  emit(event: SshAgentEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // An observer's failure is not the client's.
    }
  }
}
