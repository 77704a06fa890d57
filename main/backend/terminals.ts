// Keyport Connect's terminal sessions: SSH to a node in a pseudo-terminal, its bytes streamed to a tab.
// A session opens as `keyport ssh` does (client/ssh/session.ts prepareSsh, client/ssh/options.ts):
//   1. IsMFARequired(node, login): access checked, a clear typed error otherwise;
//   2. where per-session MFA applies, the app's touch prompt naming login@node, then a certificate scoped to
//      that node and login, valid one minute, single use: every tab earns its own;
//   3. an ssh-agent of keyport's for this session alone (a 0700 folder in KEYPORT_HOME) serves the key through
//      its SessionSigner (never key bytes on disk), keyport's known_hosts holds the cluster's host CA;
//   4. the system ssh in a pty (node-pty) with exactly those options; ssh's own messages go to a log file
//      (`-E`), so why it failed is read apart from what the server printed.
// The renderer gets terminal bytes and a reason when the session ends; never a key, a certificate or a path.
// A session ends when ssh exits, when the person closes it, at sign-out of its cluster and at app quit; each
// way stops the pty, the agent and the card session, and removes the folder.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawn as spawnPty } from 'node-pty';
import type { IPty } from 'node-pty';
import { KeyportError } from '../../proto/errors';
import type { ProfileStore } from '../../client/profiles';
import { startSshAgent } from '../../client/ssh-agent';
import type { SshAgent } from '../../client/ssh-agent';
import { sshOptions, splitAddr } from '../../client/ssh/options';
import { prepareSsh } from '../../client/ssh/session';
import type { PreparedSsh } from '../../client/ssh/session';
import type { TerminalData, TerminalEnded, TerminalView } from '../../preload/contract';
import type { CeremonyPrompts } from './prompt-broker';
import { closedEnding, sshEnding } from './terminal-endings';
import type { ClosedBy, SessionPlace } from './terminal-endings';

/** Open terminals (ceremonies in progress included) at most, so a renderer cannot start ssh without end. */
export const MAX_TERMINALS = 8;
/** How long a pty may take to end after SIGHUP before it is killed. */
const HANGUP_GRACE_MS = 5_000;

export interface TerminalEvents {
  data(payload: TerminalData): void;
  ended(payload: TerminalEnded): void;
}

export interface TerminalOpenRequest {
  /** The signed-in cluster's canonical address. */
  cluster: string;
  node: string;
  login: string;
  cols: number;
  rows: number;
}

export interface TerminalSessionsOptions {
  profiles: ProfileStore;
  events: TerminalEvents;
  maxSessions?: number;
  /** The ceremony (tests wrap it to keep the certificate a tab earned, and try it again). */
  prepare?: typeof prepareSsh;
  /** The ssh client to run (default `ssh` on PATH). */
  ssh?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Prompts that live as long as a session (the prompt broker's `ceremony`): a PIV card signs when ssh
   * authenticates, after terminals.open has answered, and its PIN or touch prompt must still show then.
   */
  sessionPrompts?: () => CeremonyPrompts;
}

interface Session {
  view: TerminalView;
  place: SessionPlace;
  pty: IPty;
  agent: SshAgent;
  prepared: PreparedSsh;
  prompts?: CeremonyPrompts;
  directory: string;
  closedBy?: ClosedBy;
  ended: Promise<void>;
}

/** What the touch prompt says: the same prompt as at login, naming the server and the login. */
export function connectTouchMessage(login: string, node: string): string {
  return `Tap your security key to connect to ${login}@${node}`;
}

export class TerminalSessions {
  private readonly sessions = new Map<string, Session>();
  private opening = 0;
  private readonly max: number;
  private readonly prepare: typeof prepareSsh;

  constructor(private readonly options: TerminalSessionsOptions) {
    this.max = options.maxSessions ?? MAX_TERMINALS;
    this.prepare = options.prepare ?? prepareSsh;
  }

  get size(): number {
    return this.sessions.size;
  }

  async open(request: TerminalOpenRequest, prompts: CeremonyPrompts): Promise<TerminalView> {
    if (this.sessions.size + this.opening >= this.max) {
      throw new KeyportError(
        'RESOURCE_EXHAUSTED',
        `${this.max} terminals are open already: close one before you open another.`,
      );
    }
    this.opening += 1;
    const lasting = this.options.sessionPrompts?.();
    try {
      const { node, login, cluster } = request;
      // 1–2: access, and the touch where per-session MFA applies.
      const prepared = await this.prepare(
        this.options.profiles,
        { node, login },
        {
          mfa: {
            otpCode: prompts.otpCode,
            securityKey: {
              ...prompts.securityKey,
              tap: () => prompts.securityKey.tap(connectTouchMessage(login, node)),
            },
          },
          piv: (lasting ?? prompts).piv,
          notice: prompts.notice,
        },
        undefined,
        { cluster, signal: prompts.signal },
      );
      return await this.start(request, prepared, lasting);
    } catch (error) {
      lasting?.finish();
      throw error;
    } finally {
      this.opening -= 1;
    }
  }

  private async start(
    request: TerminalOpenRequest,
    prepared: PreparedSsh,
    prompts: CeremonyPrompts | undefined,
  ): Promise<TerminalView> {
    const { profiles } = this.options;
    let directory: string | undefined;
    let agent: SshAgent | undefined;
    try {
      // 3. The agent for this session alone.
      directory = await mkdtemp(join(profiles.home, 'terminal-'));
      agent = await startSshAgent({
        directory,
        identities: () => [{ signer: prepared.signer, certificate: prepared.certificate }],
      });
      // 4. ssh in a pty, its own messages in the session's folder.
      const log = join(directory, 'ssh.log');
      const args = [
        ...sshOptions(prepared, agent.socketPath),
        '-E',
        log,
        '-l',
        prepared.login,
        splitAddr(prepared.node.addr).host,
      ];
      const env = this.options.env ?? process.env;
      let pty: IPty;
      try {
        pty = spawnPty(this.options.ssh ?? 'ssh', args, {
          name: 'xterm-256color',
          cols: request.cols,
          rows: request.rows,
          cwd: homedir(),
          // Nothing of the app's environment but what ssh needs: no SSH_AUTH_SOCK, no KEYPORT_*.
          env: {
            PATH: env.PATH ?? '/usr/bin:/bin',
            HOME: homedir(),
            LANG: env.LANG ?? 'C.UTF-8',
            TERM: 'xterm-256color',
          },
        });
      } catch (error) {
        throw new KeyportError(
          'PRECONDITION_FAILED',
          `Cannot run ssh (${(error as Error).message}): install OpenSSH's client.`,
        );
      }
      const view: TerminalView = {
        id: randomUUID(),
        cluster: request.cluster,
        node: prepared.node.name,
        login: prepared.login,
      };
      const place: SessionPlace = {
        cluster: request.cluster,
        node: prepared.node.name,
        addr: prepared.node.addr,
        login: prepared.login,
      };
      const sessionDirectory = directory;
      const sessionAgent = agent;
      let finished!: () => void;
      const session: Session = {
        view,
        place,
        pty,
        agent: sessionAgent,
        prepared,
        ...(prompts ? { prompts } : {}),
        directory: sessionDirectory,
        ended: new Promise<void>((resolve) => (finished = resolve)),
      };
      this.sessions.set(view.id, session);
      pty.onData((data) => this.options.events.data({ id: view.id, data }));
      pty.onExit((exit) => {
        void this.finish(session, exit).finally(finished);
      });
      return view;
    } catch (error) {
      await agent?.close();
      await prepared.close();
      if (directory) await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }

  private async finish(session: Session, exit: { exitCode: number; signal?: number }): Promise<void> {
    const { view, place, directory } = session;
    const ending = session.closedBy
      ? closedEnding(view.id, place, session.closedBy)
      : sshEnding(view.id, place, exit, await readFile(join(directory, 'ssh.log'), 'utf8').catch(() => ''), [
          directory,
          this.options.profiles.home,
        ]);
    this.sessions.delete(view.id);
    await session.agent.close().catch(() => {});
    await session.prepared.close().catch(() => {});
    session.prompts?.finish();
    await rm(directory, { recursive: true, force: true });
    this.options.events.ended(ending);
  }

  private session(id: string): Session {
    const session = this.sessions.get(id);
    if (!session) {
      throw new KeyportError('NOT_FOUND', 'This terminal session has ended; open a new one.', {
        fieldPath: 'id',
      });
    }
    return session;
  }

  input(id: string, data: string): void {
    this.session(id).pty.write(data);
  }

  resize(id: string, cols: number, rows: number): void {
    this.session(id).pty.resize(cols, rows);
  }

  /** Ends a session: SIGHUP to ssh (as a closed terminal window sends), SIGKILL if it lingers. */
  async close(id: string, by: ClosedBy = 'closed'): Promise<void> {
    const session = this.session(id);
    session.closedBy ??= by;
    session.pty.kill('SIGHUP');
    const timer = setTimeout(() => {
      try {
        session.pty.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }, HANGUP_GRACE_MS);
    try {
      await session.ended;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the sessions of one cluster (signed out of it). */
  async closeCluster(cluster: string, by: ClosedBy = 'signedOut'): Promise<void> {
    const ids = [...this.sessions.values()].filter((s) => s.view.cluster === cluster).map((s) => s.view.id);
    await Promise.all(ids.map((id) => this.close(id, by)));
  }

  async closeAll(by: ClosedBy = 'appQuit'): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, by)));
  }
}
