// A local cluster for tests, benchmarks and the demo: real keyport-auth processes on 127.0.0.1 with
// temporary data dirs, and the keyport CLI run as a person would, with stdin answering its prompts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { totpCode } from '../auth/totp';

export const repoRoot = resolve(import.meta.dirname, '..');
const authBin = join(repoRoot, 'bin/keyport-auth.mjs');
const cliBin = join(repoRoot, 'bin/keyport.mjs');

export interface LabCluster {
  address: string;
  port: number;
  caPin: string;
  dataDir: string;
  clusterName: string;
  process: ChildProcess;
  /** Everything the service printed, for assertions and failure reports. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface LabClusterOptions {
  clusterName?: string;
  /** Reuse a data dir (a restart); a fresh temporary one otherwise, removed by stop(). */
  dataDir?: string;
  /** YAML written to a config file passed with --config. */
  configYaml?: string;
  extraArgs?: string[];
  startTimeoutMs?: number;
}

export async function startLabCluster(options: LabClusterOptions = {}): Promise<LabCluster> {
  const ownsDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'keyport-auth-')));
  const clusterName = options.clusterName ?? 'lab';
  const args = [
    authBin,
    'start',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    '--cluster-name',
    clusterName,
  ];
  if (options.configYaml !== undefined) {
    const configPath = join(dataDir, '..', `${clusterName}-${process.pid}-${Date.now()}.yaml`);
    await writeFile(configPath, options.configYaml);
    args.push('--config', configPath);
  }
  args.push(...(options.extraArgs ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const started = await new Promise<{ caPin: string; address: string }>((resolveStart, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`keyport-auth did not start in time:\n${output}`)),
      options.startTimeoutMs ?? 20_000,
    );
    const check = () => {
      const pin = /CA pin: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
      const address = /listening on (\S+)/.exec(output)?.[1];
      if (pin && address) {
        clearTimeout(timer);
        resolveStart({ caPin: pin, address });
      }
    };
    child.stdout?.on('data', check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`keyport-auth exited with ${code} before it was ready:\n${output}`));
    });
  });

  let stopping: Promise<number | null> | undefined;
  return {
    address: started.address,
    port: Number(started.address.split(':').pop()),
    caPin: started.caPin,
    dataDir,
    clusterName,
    process: child,
    output: () => output,
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null && child.pid)
          process.kill(child.pid, signal);
        const code = await exited;
        if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
        return code;
      })();
      return stopping;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** KEYPORT_HOME for this run. */
  home: string;
  /** Lines for stdin, answering the prompts in order (stdin is not a terminal). */
  input?: string[];
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Runs the keyport CLI as a separate process, as a person or a script would. */
export function runKeyport(args: string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, KEYPORT_HOME: options.home, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyport ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
    child.stdin.end(options.input ? `${options.input.join('\n')}\n` : '');
  });
}

/** `keyport admin --data-dir` against a lab cluster: the auth host's own super-admin identity. */
export function runAdmin(
  cluster: LabCluster,
  args: string[],
  options: Omit<CliOptions, 'home'> & { home?: string } = {},
) {
  return runKeyport(['admin', '--data-dir', cluster.dataDir, ...args], {
    home: options.home ?? cluster.dataDir,
    ...options,
  });
}

/**
 * The person's authenticator app: a code for the next time step. The server accepts one step of drift,
 * and never a step at or before one already used, so this code is fresh even right after another login.
 */
export function nextTotpCode(secret: string, nowMs = Date.now()): string {
  return totpCode(secret, nowMs + 30_000);
}

export interface SignedUpUser {
  user: string;
  password: string;
  totpSecret: string;
}

/** Admin adds a user, then the person signs up with the token through the CLI, registering an OTP device. */
export async function signUpUser(
  cluster: LabCluster,
  home: string,
  user: string,
  roles: string[],
  password = `${user}-password-123`,
  logins: string[] = [user],
): Promise<SignedUpUser> {
  const added = await runAdmin(cluster, [
    'users',
    'add',
    user,
    '--roles',
    roles.join(','),
    '--logins',
    logins.join(','),
  ]);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1];
  if (added.code !== 0 || !token) throw new Error(`users add failed: ${added.stderr}${added.stdout}`);
  const secret = await signUpWithToken(cluster, home, token, password);
  return { user, password, totpSecret: secret };
}

/** Runs `keyport signup`, reading the OTP secret it shows and answering with a current code. */
export async function signUpWithToken(
  cluster: LabCluster,
  home: string,
  token: string,
  password: string,
): Promise<string> {
  const child = spawn(
    process.execPath,
    [cliBin, 'signup', '--cluster', cluster.address, '--token', token, '--ca-pin', cluster.caPin],
    { cwd: repoRoot, env: { ...process.env, KEYPORT_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let stdout = '';
  let secret = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (/Choose a password/.test(chunk.toString())) child.stdin.write(`${password}\n`);
    const shown = /secret: ([A-Z2-7]+)/.exec(stderr)?.[1];
    if (shown && !secret && /Enter the code/.test(stderr)) {
      secret = shown;
      child.stdin.end(`${totpCode(secret, Date.now())}\n`);
    }
  });
  const code = await new Promise<number | null>((resolveExit) => child.once('exit', resolveExit));
  if (code !== 0 || !secret) throw new Error(`signup failed (${code}): ${stderr}${stdout}`);
  return secret;
}

/** `keyport login` with password and OTP from stdin. */
export function loginUser(
  cluster: LabCluster,
  home: string,
  person: SignedUpUser,
  extraArgs: string[] = [],
  env?: Record<string, string | undefined>,
): Promise<CliResult> {
  return runKeyport(
    [
      'login',
      '--cluster',
      cluster.address,
      '--user',
      person.user,
      '--ca-pin',
      cluster.caPin,
      '--password-stdin',
      ...extraArgs,
    ],
    { home, input: [person.password, nextTotpCode(person.totpSecret)], env },
  );
}
