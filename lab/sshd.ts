// A private OpenSSH sshd per node, for tests: 127.0.0.1 on a free port, its own config (LAB.md "OpenSSH
// sshd (for nodes)"), including the snippet `keyport admin nodes add` wrote. keyport-node must sit where
// every folder on its path is root-owned and not writable by others, so the lab puts a small launcher in
// /run/keyport-lab/ (never /tmp), which also hands keyport-node the lab clock: sshd runs it with a bare
// environment.
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sshOptions, splitAddr } from '../client/ssh/options';
import { startSshAgent } from '../client/ssh-agent';
import type { SessionSigner } from '../client/keystore/signer';
import { repoRoot, runAdmin } from './cluster';
import type { CliResult, LabCluster } from './cluster';

export const SSHD = '/usr/sbin/sshd';
const LAUNCHER_ROOT = '/run/keyport-lab';
const execFileAsync = promisify(execFile);

export interface NodeCommand {
  path: string;
  /** How many times sshd has run keyport-node through this launcher. */
  calls(): Promise<number>;
  remove(): Promise<void>;
}

/** A keyport-node launcher in a root-owned folder; `env` (e.g. KEYPORT_LAB_CLOCK) is set for it. */
export async function labNodeCommand(env: Record<string, string> = {}): Promise<NodeCommand> {
  // keyport-node's bundle, rebuilt when a source changed since (else the launcher runs the sources: slower).
  await execFileAsync(process.execPath, [join(repoRoot, 'build-node.mjs'), '--if-stale']);
  await mkdir(LAUNCHER_ROOT, { recursive: true, mode: 0o755 });
  await chmod(LAUNCHER_ROOT, 0o755);
  const dir = join(LAUNCHER_ROOT, randomBytes(6).toString('hex'));
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(env).map(([name, value]) => `export ${name}=${quote(value)}\n`);
  const path = join(dir, 'keyport-node');
  // One line per run (sshd's command user is root in the lab), so a benchmark can count them.
  const callLog = join(dir, 'calls');
  await writeFile(callLog, '', { mode: 0o644 });
  await writeFile(
    path,
    `#!/bin/sh\necho >> ${quote(callLog)}\n${exports.join('')}exec ${quote(process.execPath)} ${quote(join(repoRoot, 'bin/keyport-node.mjs'))} "$@"\n`,
    { mode: 0o755 },
  );
  await chmod(path, 0o755);
  return {
    path,
    calls: async () => (await readFile(callLog, 'utf8')).length,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Makes local accounts for the logins tests use (sshd logs in only existing accounts): no home, /bin/sh,
 * and the password field `*` (no password, but not "locked", which sshd without PAM refuses).
 */
export function ensureLabAccounts(names: readonly string[]): void {
  for (const name of names) {
    if (spawnSync('id', ['-u', name]).status !== 0) {
      const made = spawnSync('useradd', ['--no-create-home', '--shell', '/bin/sh', name], {
        encoding: 'utf8',
      });
      if (made.status !== 0 && spawnSync('id', ['-u', name]).status !== 0) {
        throw new Error(`useradd ${name} failed: ${made.stderr}`);
      }
    }
    const status = spawnSync('passwd', ['-S', name], { encoding: 'utf8' }).stdout.split(' ')[1];
    if (status === 'L') spawnSync('usermod', ['-p', '*', name]);
  }
}

export interface LabSshd {
  port: number;
  addr: string;
  process: ChildProcess;
  log(): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Resolves once sshd sends its banner on `port`. */
function bannerOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString().startsWith('SSH-2.0-'));
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts sshd for the node whose files are in `nodeDir` (its sshd_config.keyport), on a free port. */
export async function startLabSshd(options: { nodeDir: string; port?: number }): Promise<LabSshd> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = options.port ?? (await freePort());
  const config = join(options.nodeDir, 'sshd_config');
  const logFile = join(options.nodeDir, 'sshd.log');
  await writeFile(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `PidFile ${join(options.nodeDir, 'sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'MaxStartups 100:30:200',
      'LogLevel VERBOSE',
      `Include ${join(options.nodeDir, 'sshd_config.keyport')}`,
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-e', '-f', config, '-E', logFile], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!(await bannerOn(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`sshd did not start on port ${port}: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    addr: `127.0.0.1:${port}`,
    process: child,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    async stop() {
      if (child.exitCode === null && child.pid) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * The system ssh to `node` as keyport ssh runs it, with an agent in this process serving `signer` with
 * `certificate`: for tests that offer a node a certificate of their choosing (a spent one, another node's,
 * a session's own). Asynchronous on purpose: the agent answers from this process.
 */
export async function sshWithAgent(
  workDir: string,
  offer: { signer: SessionSigner; certificate: string; login: string; knownHostsFile: string },
  node: { name: string; addr: string },
  command: string,
): Promise<CliResult> {
  const directory = await mkdtemp(join(workDir, 'agent-'));
  const agent = await startSshAgent({
    directory,
    identities: () => [{ signer: offer.signer, certificate: offer.certificate }],
  });
  try {
    const args = [
      ...sshOptions(
        { node: { ...node, labels: {}, subKind: 'openssh' }, knownHostsFile: offer.knownHostsFile },
        agent.socketPath,
      ),
      '-l',
      offer.login,
      splitAddr(node.addr).host,
      '--',
      command,
    ];
    return await new Promise((resolve, reject) => {
      const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
  } finally {
    await agent.close();
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * A node of `cluster` with its own sshd: `keyport admin nodes add` into `dir`, sshd started on a free port,
 * then the node registered again (`--force`) with that address. `tamper` changes the node's files before
 * sshd starts; the second registration then goes to another folder, so the tampered files stay.
 */
export async function startLabNode(
  cluster: LabCluster,
  options: {
    name: string;
    labels: string;
    dir: string;
    nodeCommand: NodeCommand;
    tamper?: (dir: string) => Promise<void>;
  },
): Promise<LabSshd> {
  const register = async (addr: string, out: string, force: string[]) => {
    const added = await runAdmin(cluster, [
      'nodes',
      'add',
      ...force,
      '--name',
      options.name,
      '--addr',
      addr,
      '--labels',
      options.labels,
      '--out',
      out,
      '--node-command',
      options.nodeCommand.path,
    ]);
    if (added.code !== 0) throw new Error(`nodes add ${options.name} failed: ${added.stderr}`);
  };
  // A placeholder address until sshd has its port.
  await register('127.0.0.1:1', options.dir, []);
  await options.tamper?.(options.dir);
  const sshd = await startLabSshd({ nodeDir: options.dir });
  try {
    // sshd reads its host certificate and keys at each connection: the new ones count at once.
    await register(sshd.addr, options.tamper ? `${options.dir}-registered` : options.dir, ['--force']);
  } catch (error) {
    await sshd.stop();
    throw error;
  }
  return sshd;
}

/**
 * A `tamper` for startLabNode: another CA signs the node's host key, so the node shows a host certificate
 * that is not from its cluster's host CA (a node that is not what the cluster registered).
 */
export function rogueHostCertificate(name: string): (dir: string) => Promise<void> {
  return async (dir) => {
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'rogue-ca')]);
    await execFileAsync('ssh-keygen', [
      '-q',
      '-s',
      join(dir, 'rogue-ca'),
      '-I',
      name,
      '-h',
      '-n',
      `${name},127.0.0.1`,
      join(dir, 'ssh_host_ecdsa_key.pub'),
    ]);
  };
}
