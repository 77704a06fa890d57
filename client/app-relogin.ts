// The CLI asks Keyport Connect to sign in again (issue 13): when `keyport` finds its session expired or
// unusable and the app runs for the same KEYPORT_HOME, the app shows its relogin prompt, the person signs
// in there (password, security key, PIV card), and the CLI goes on with the new profile the app saved in
// the shared KEYPORT_HOME. Nothing secret crosses the socket: a cluster address in, a verdict out.
//
// The socket is `connect/relogin.sock` in KEYPORT_HOME, beside the link socket (main/backend/link-socket.ts),
// 0600 in a 0700 directory: only this user reaches it. A socket of its own rather than a message on the link
// socket: each socket keeps one protocol, and a link is text that must never be taken for a command.
//
// The protocol, one request per connection: the CLI sends one JSON line `{"cluster":"HOST:PORT"}` (at most
// MAX_RELOGIN_REQUEST bytes); the app answers one JSON line once the relogin ended, `{"ok":true}` when the
// new profile is saved, or `{"ok":false,"code","message"}` (CANCELLED when the person cancelled), and closes.
import { connect } from 'node:net';
import { join } from 'node:path';
import { KeyportError, errorCodes } from '../proto/errors';
import type { KeyportErrorCode } from '../proto/errors';

export const MAX_RELOGIN_REQUEST = 1024;
/** Longer than the app's relogin prompt waits for an answer (5 minutes), so the app's verdict comes first. */
export const APP_RELOGIN_TIMEOUT_MS = 6 * 60_000;

export function reloginSocketPath(keyportHome: string): string {
  return join(keyportHome, 'connect', 'relogin.sock');
}

export type AppReloginAnswer = { ok: true } | { ok: false; code: KeyportErrorCode; message: string };

export interface AskAppOptions {
  /** Told once the app took the request (the CLI says "sign in in Keyport Connect"). */
  onAsked?(): void;
  timeoutMs?: number;
}

/**
 * Asks the app running for `keyportHome` to sign in to `cluster` again. Resolves `false` when no app
 * listens (no socket, or a stale one), `true` once the app saved the new profile; throws the app's
 * refusal as a KeyportError (CANCELLED when the person cancelled the prompt).
 */
export function askAppToRelogin(
  keyportHome: string,
  cluster: string,
  options: AskAppOptions = {},
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect(reloginSocketPath(keyportHome));
    let reply = '';
    let connected = false;
    socket.setEncoding('utf8');
    socket.setTimeout(options.timeoutMs ?? APP_RELOGIN_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new KeyportError('UNAVAILABLE', 'Keyport Connect did not finish the sign-in in time.'));
    });
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify({ cluster })}\n`);
      options.onAsked?.();
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.length > 64 * 1024) socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) {
        resolve(false);
        return;
      }
      reject(new KeyportError('UNAVAILABLE', `Could not reach Keyport Connect: ${error.message}`));
    });
    socket.once('close', () => {
      if (!connected) return;
      const answer = parseAnswer(reply);
      if (!answer)
        reject(new KeyportError('UNAVAILABLE', 'Keyport Connect gave no answer about the sign-in.'));
      else if (answer.ok) resolve(true);
      else reject(new KeyportError(answer.code, answer.message));
    });
  });
}

function parseAnswer(reply: string): AppReloginAnswer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(reply.trim());
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const answer = value as { ok?: unknown; code?: unknown; message?: unknown };
  if (answer.ok === true) return { ok: true };
  if (
    answer.ok === false &&
    typeof answer.message === 'string' &&
    typeof answer.code === 'string' &&
    (errorCodes as readonly string[]).includes(answer.code)
  ) {
    return { ok: false, code: answer.code as KeyportErrorCode, message: answer.message };
  }
  return undefined;
}
