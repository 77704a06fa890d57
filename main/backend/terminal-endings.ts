// Why a terminal session ended, in words that say what to do next: from how it was closed (by the person, at
// sign-out, at quit) or from ssh's exit status and its own log (`ssh -E FILE`: ssh's messages go there,
// not into the terminal, so they can be read apart from what the server printed). Pure: no I/O.
import type { TerminalEnded } from '../../preload/contract';

export interface SessionPlace {
  cluster: string;
  node: string;
  /** HOST:PORT of the node's sshd. */
  addr: string;
  login: string;
}

/** Who closed a session that did not end on its own. */
export type ClosedBy = 'closed' | 'signedOut' | 'appQuit';

/** ssh's own failure status (ssh(1): "exits with 255 if an error occurred"). */
const SSH_FAILED = 255;

/** The last non-empty line of ssh's log, without what could name a local file. */
function lastLine(log: string, hide: readonly string[]): string {
  const line =
    log
      .split(/\r?\n/)
      .map((text) => text.trim())
      .filter(Boolean)
      .at(-1) ?? '';
  let shown = line;
  for (const path of hide) if (path) shown = shown.split(path).join('…');
  return shown.slice(0, 300);
}

export function closedEnding(id: string, place: SessionPlace, by: ClosedBy): TerminalEnded {
  const message = {
    closed: 'You closed this session.',
    signedOut: `Signed out of ${place.cluster}, so the session was closed. Sign in again to reconnect.`,
    appQuit: 'Keyport Connect is quitting, so the session was closed.',
  }[by];
  return { id, reason: by, message };
}

/**
 * The ending of a session whose ssh exited by itself. `hide` lists local paths (the session's folder,
 * KEYPORT_HOME) that must not reach the renderer even inside ssh's words.
 */
export function sshEnding(
  id: string,
  place: SessionPlace,
  exit: { exitCode: number; signal?: number },
  log: string,
  hide: readonly string[] = [],
): TerminalEnded {
  const { node, addr, login, cluster } = place;
  if (exit.exitCode !== SSH_FAILED) {
    if (exit.signal) {
      return {
        id,
        reason: 'exited',
        exitCode: 128 + exit.signal,
        message: `ssh was stopped (signal ${exit.signal}).`,
      };
    }
    return {
      id,
      reason: 'exited',
      exitCode: exit.exitCode,
      message:
        exit.exitCode === 0
          ? `The session on ${node} ended.`
          : `The session on ${node} ended with exit code ${exit.exitCode}.`,
    };
  }
  if (
    /host key verification failed|remote host identification has changed|no \S+ host key is known|certificate invalid|host certificate/i.test(
      log,
    )
  ) {
    return {
      id,
      reason: 'hostNotTrusted',
      exitCode: SSH_FAILED,
      message:
        `${node} (${addr}) did not show a host certificate from ${cluster}'s host CA, so Keyport did not ` +
        `connect: it may not be the server you meant. Tell your cluster admin; the node may need to be ` +
        'registered again (keyport admin nodes add).',
    };
  }
  if (/permission denied|too many authentication failures/i.test(log)) {
    return {
      id,
      reason: 'accessDenied',
      exitCode: SSH_FAILED,
      message:
        `${node} refused you as "${login}". Pick a login your roles allow there, or sign in again; ` +
        'an admin can see why in the audit log.',
    };
  }
  if (
    /connection refused|connection timed out|no route to host|network is unreachable|could not resolve/i.test(
      log,
    )
  ) {
    return {
      id,
      reason: 'serverDown',
      exitCode: SSH_FAILED,
      message:
        `${node} (${addr}) is not answering: the server is down or its sshd is not running. ` +
        "Try again later, or tell the server's admin.",
    };
  }
  if (
    /connection closed|connection reset|broken pipe|timeout, server|connection to .* closed/i.test(log) ||
    log.trim() === ''
  ) {
    return {
      id,
      reason: 'connectionClosed',
      exitCode: SSH_FAILED,
      message: `The connection to ${node} was closed. Reconnect when the server is back.`,
    };
  }
  return {
    id,
    reason: 'failed',
    exitCode: SSH_FAILED,
    message: `ssh could not keep the session to ${node}: ${lastLine(log, hide)}`,
  };
}
