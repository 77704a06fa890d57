// A private PostgreSQL for tests: initdb in a temporary folder, the postmaster as a direct child of this
// process (no pg_ctl daemonizing: orphans are reaped late here, see LAB.md "PostgreSQL"), listening on a
// loopback port with its socket in the folder. initdb and postgres refuse to run as root, so as root they
// run as the `postgres` system user that Debian's package creates.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const binDir = process.env.KEYPORT_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface LabPostgres {
  /** postgresql://keyport:PASSWORD@127.0.0.1:PORT/keyport, a database owned by the `keyport` role. */
  connString: string;
  port: number;
  /** The temporary folder: data/ (the cluster), s/ (the socket). */
  dataDir: string;
  /** A fresh empty database owned by `keyport`; returns its conn string. */
  createDatabase(name?: string): Promise<string>;
  /** Fast shutdown (SIGINT) and the folder removed. */
  stop(): Promise<void>;
  /** Fast shutdown and a start on the same port and data. */
  restart(): Promise<void>;
  /** SIGKILL, as a crash: the postmaster and its backends gone, the stale postmaster.pid removed. */
  kill(): Promise<void>;
  /** Starts again after kill() (crash recovery) or shutdown(). */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT), the data kept: down until start(). restart() is this and start() at once. */
  shutdown(): Promise<void>;
  /**
   * pg_amcheck over the socket as the superuser: every table's heap and every B-tree index of `database`
   * (with --heapallindexed), installing the amcheck extension into pg_catalog where it is missing.
   * `ok` is its exit status 0 (nothing corrupt); `output` is what it printed.
   */
  amcheck(database?: string): Promise<{ ok: boolean; output: string }>;
  /** What the server printed, for failure reports. */
  output(): string;
}

export interface LabPostgresOptions {
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

interface Runner {
  uid?: number;
  gid?: number;
}

function runner(): Runner {
  if (process.getuid?.() !== 0) return {};
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('lab postgres: running as root, and there is no `postgres` user to run as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Gone: no such process, or a zombie (which `kill -0` would still call alive). */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (comm) S ...": the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

async function waitGone(pids: number[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => !processGone(pid))) {
    if (Date.now() > deadline) throw new Error(`lab postgres: processes ${pids.join(',')} did not exit`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startLabPostgres(options: LabPostgresOptions = {}): Promise<LabPostgres> {
  const as = runner();
  const dir = await mkdtemp(join(tmpdir(), 'keyport-pg-'));
  const own = async (path: string) => {
    if (as.uid !== undefined) await chown(path, as.uid, as.gid!);
  };
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 's');
  const superPassword = randomBytes(18).toString('base64url');
  const password = randomBytes(18).toString('base64url');
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';

  const cleanUp = () => rm(dir, { recursive: true, force: true });
  try {
    await own(dir);
    await mkdir(socketDir, { mode: 0o700 });
    await own(socketDir);
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${superPassword}\n`, { mode: 0o600 });
    await own(pwfile);
    const init = spawnSync(
      join(binDir, 'initdb'),
      [
        '-D',
        dataDir,
        '-U',
        'postgres',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        `--pwfile=${pwfile}`,
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { ...as, encoding: 'utf8' },
    );
    await rm(pwfile, { force: true });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.error ?? ''}${init.stdout}${init.stderr}`);
  } catch (error) {
    await cleanUp();
    throw error;
  }

  const settings = { fsync: 'off', ...options.settings };
  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (!port || attempt > 0) port = await freePort();
      const args = ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'];
      args.push('-c', `unix_socket_directories=${socketDir}`);
      for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
      const started = spawn(join(binDir, 'postgres'), args, { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<void>((r) => started.once('exit', () => r()));
      const deadline = Date.now() + 30_000;
      let ready = false;
      let gone = false;
      void exited.then(() => (gone = true));
      while (!ready && !gone && Date.now() < deadline) {
        const check = spawnSync(join(binDir, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]);
        ready = check.status === 0;
        if (!ready) await new Promise((r) => setTimeout(r, 30));
      }
      if (ready && !gone) return;
      if (!gone) started.kill('SIGKILL');
      await exited;
      // Another process took the port between the probe and the bind: try another one.
      if (attempt < 3 && /could not (bind|create listen)/i.test(output)) continue;
      throw new Error(`lab postgres did not start:\n${output}`);
    }
  };

  const shutDown = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running?.pid || running.exitCode !== null || running.signalCode !== null) return;
    const backends = signal === 'SIGKILL' ? childrenOf(running.pid) : [];
    running.kill(signal);
    await waitGone([running.pid]);
    // After a SIGKILL the backends notice their postmaster is gone and exit; a new postmaster must not
    // start while they still hold the old shared memory, nor trip over the dead one's pid file.
    await waitGone(backends);
    if (signal === 'SIGKILL') await rm(join(dataDir, 'postmaster.pid'), { force: true });
  };

  const adminQuery = async (text: string) => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password: superPassword,
      database: 'postgres',
    });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  const connString = (database: string) => `postgresql://keyport:${password}@127.0.0.1:${port}/${database}`;

  try {
    await launch();
    await adminQuery(`create role keyport login password '${password}'`);
    await adminQuery('create database keyport owner keyport');
  } catch (error) {
    await shutDown('SIGKILL').catch(() => undefined);
    await cleanUp();
    throw error;
  }

  let databases = 0;
  return {
    get connString() {
      return connString('keyport');
    },
    get port() {
      return port;
    },
    dataDir: dir,
    async createDatabase(name = `keyport_${++databases}_${randomBytes(4).toString('hex')}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`lab postgres: bad database name ${name}`);
      await adminQuery(`create database ${name} owner keyport`);
      return connString(name);
    },
    async stop() {
      await shutDown('SIGINT');
      await cleanUp();
    },
    async restart() {
      await shutDown('SIGINT');
      await launch();
    },
    async kill() {
      await shutDown('SIGKILL');
    },
    async start() {
      if (child) return;
      if (!existsSync(dataDir)) throw new Error('lab postgres: stopped for good');
      await launch();
    },
    async shutdown() {
      await shutDown('SIGINT');
    },
    async amcheck(database = 'keyport') {
      const args = ['-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', database];
      args.push('--install-missing', '--heapallindexed');
      return new Promise<{ ok: boolean; output: string }>((resolveRun, reject) => {
        const checker = spawn(join(binDir, 'pg_amcheck'), args, { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
        let printed = '';
        checker.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
        checker.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
        checker.once('error', reject);
        checker.once('exit', (code) => resolveRun({ ok: code === 0, output: printed }));
      });
    },
    output: () => output,
  };
}
