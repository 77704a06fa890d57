// The app's end of the CLI's relogin request (client/app-relogin.ts has the protocol): one JSON line naming
// a cluster, validated, then the backend's relogin for it (the prompt "The CLI asked to sign in again",
// joined with one already running for that cluster), and its verdict as one JSON line. The request only
// ever shows a prompt: nothing happens without the person, and nothing secret goes back.
import type { Socket } from 'node:net';
import { z } from 'zod';
import { MAX_RELOGIN_REQUEST, reloginSocketPath } from '../../client/app-relogin';
import type { AppReloginAnswer } from '../../client/app-relogin';
import { formatClusterAddress, parseClusterAddress } from '../../client/cluster-trust';
import { KeyportError } from '../../proto/errors';
import { IDLE_MS, listenOnPrivateSocket } from './link-socket';
import type { LinkSocket } from './link-socket';
import type { Relogin } from './relogin';

/** What the relogin prompt says when the CLI asked for it. */
export const CLI_RELOGIN_REASON = 'The CLI asked to sign in again.';

const requestSchema = z.strictObject({
  cluster: z
    .string()
    .min(1)
    .max(260)
    .regex(/^[^\s/]+$/, 'A cluster address is HOST:PORT.'),
});

/** Listens for the CLI's relogin requests for `keyportHome`; each runs `relogin.signInAgain`. */
export function listenForReloginRequests(
  keyportHome: string,
  relogin: Pick<Relogin, 'signInAgain'>,
): Promise<LinkSocket> {
  return listenOnPrivateSocket(reloginSocketPath(keyportHome), 'relogin', (socket) => serve(socket, relogin));
}

function serve(socket: Socket, relogin: Pick<Relogin, 'signInAgain'>): void {
  let received = '';
  let done = false;
  const answer = (value: AppReloginAnswer) => {
    done = true;
    if (!socket.destroyed) socket.end(`${JSON.stringify(value)}\n`);
  };
  const refuse = (error: unknown) =>
    answer(
      error instanceof KeyportError
        ? { ok: false, code: error.code, message: error.message }
        : { ok: false, code: 'INTERNAL', message: 'The sign-in failed.' },
    );
  socket.setEncoding('utf8');
  // Silence before the request ends the connection; once it arrived, the person takes their time.
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (done) return;
    received += chunk;
    const newline = received.indexOf('\n');
    if (newline < 0 && received.length <= MAX_RELOGIN_REQUEST) return;
    if (newline < 0 || newline > MAX_RELOGIN_REQUEST) {
      refuse(
        new KeyportError('INVALID_ARGUMENT', `A relogin request is at most ${MAX_RELOGIN_REQUEST} bytes.`),
      );
      return;
    }
    done = true;
    socket.pause();
    socket.setTimeout(0);
    let cluster: string;
    try {
      const parsed = requestSchema.safeParse(JSON.parse(received.slice(0, newline)));
      if (!parsed.success)
        throw new KeyportError('INVALID_ARGUMENT', 'A relogin request names one cluster (HOST:PORT).');
      cluster = formatClusterAddress(parseClusterAddress(parsed.data.cluster));
    } catch (error) {
      refuse(
        error instanceof KeyportError
          ? error
          : new KeyportError('INVALID_ARGUMENT', 'A relogin request is one JSON line.'),
      );
      return;
    }
    relogin.signInAgain(cluster, [CLI_RELOGIN_REASON], 'cli').then(() => answer({ ok: true }), refuse);
  });
}
