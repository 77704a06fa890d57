// A local cluster for tests, benchmarks and the demo: real keyport-auth processes on 127.0.0.1 with
// temporary data dirs, and the keyport CLI run as a person would, with stdin answering its prompts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { signup } from '../client/ceremonies/signup';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';

export const repoRoot = resolve(import.meta.dirname, '..');
const authBin = join(repoRoot, 'bin/keyport-auth.mjs');
const cliBin = join(repoRoot, 'bin/keyport.mjs');

export interface LabCluster {
  address: string;
  port: number;
  caPin: string;
  dataDir: string;
  clusterName: string;
  /** The web UI's origin (https://localhost:PORT), when started with --web-listen. */
  webOrigin?: string;
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
  /** The address to listen on (default 127.0.0.1:0, a free port). */
  listen?: string;
  /** Extra environment for the service, such as a lab clock's (lab/clock.ts). */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

/**
 * The `hardware_key.attestation_roots` part of an `auth_service.authentication` section (indented to sit
 * under it), trusting one attestation root PEM, as tests and benches with a lab PIV card need.
 */
export function attestationRootsYaml(rootPem: string): string {
  const pem = rootPem
    .trim()
    .split('\n')
    .map((line) => `          ${line}`)
    .join('\n');
  return `    hardware_key:\n      attestation_roots:\n        - |\n${pem}\n`;
}

/** A config for startLabCluster: local users, no second factor, trusting one PIV attestation root. */
export function hardwareKeyClusterYaml(rootPem: string): string {
  return `auth_service:\n  authentication:\n    type: local\n    second_factor: "off"\n${attestationRootsYaml(rootPem)}`;
}

export async function startLabCluster(options: LabClusterOptions = {}): Promise<LabCluster> {
  const ownsDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'keyport-auth-')));
  const clusterName = options.clusterName ?? 'lab';
  const listen = options.listen ?? '127.0.0.1:0';
  const args = ['start', '--data-dir', dataDir, '--listen', listen, '--cluster-name', clusterName];
  let configDir: string | undefined;
  if (options.configYaml !== undefined) {
    configDir = await mkdtemp(join(tmpdir(), 'keyport-config-'));
    await writeFile(join(configDir, 'auth.yaml'), options.configYaml);
    args.push('--config', join(configDir, 'auth.yaml'));
  }
  const cleanUp = async () => {
    if (configDir) await rm(configDir, { recursive: true, force: true });
    if (ownsDataDir) {
      await rm(dataDir, { recursive: true, force: true });
      // The key-encryption key sits beside the data dir (auth/secrets.ts), not in it.
      await rm(`${dataDir}.kek`, { force: true });
    }
  };
  let started: KeyportAuthProcess;
  try {
    started = await startKeyportAuth([...args, ...(options.extraArgs ?? [])], {
      dataDir,
      clusterName,
      env: options.env,
      startTimeoutMs: options.startTimeoutMs,
    });
  } catch (error) {
    await cleanUp();
    throw error;
  }
  let stopping: Promise<number | null> | undefined;
  return {
    ...started,
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      stopping ??= started.stop(signal).then(async (code) => {
        await cleanUp();
        return code;
      });
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
    }, options.timeoutMs ?? 60_000);
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
  /** Which step's code to answer with: 0 the current one, -30_000 the previous one (see keychain tests). */
  codeOffsetMs = 0,
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
      // The previous step's code is one step from too old: close to a step boundary the server could be
      // past it before the answer arrives, so wait for the boundary and answer in the new step.
      const untilBoundary = 30_000 - (Date.now() % 30_000);
      const wait = codeOffsetMs < 0 && untilBoundary < 8_000 ? untilBoundary + 100 : 0;
      setTimeout(() => child.stdin.end(`${totpCode(shown, Date.now() + codeOffsetMs)}\n`), wait);
    }
  });
  const code = await new Promise<number | null>((resolveExit) => child.once('exit', resolveExit));
  if (code !== 0 || !secret) throw new Error(`signup failed (${code}): ${stderr}${stdout}`);
  return secret;
}

/** `keyport login` with the password and an OTP code (by default the next step's) on stdin. */
export function loginUser(
  cluster: LabCluster,
  home: string,
  person: SignedUpUser,
  extraArgs: string[] = [],
  env?: Record<string, string | undefined>,
  code: string = nextTotpCode(person.totpSecret),
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
    { home, input: [person.password, code], env },
  );
}

/**
 * The cluster's own SQLite database, opened beside the running keyport-auth (WAL allows a second
 * connection). Tests read it to assert that a refused call left stored state unchanged, and may write
 * it to simulate time passing (e.g. an expired signup token). Close it when done.
 */
export function openClusterDb(
  cluster: Pick<LabCluster, 'dataDir'>,
  options: { readonly?: boolean } = {},
): SQLite.Database {
  const db = new SQLite(join(cluster.dataDir, 'keyport.db'), {
    readonly: options.readonly ?? true,
    fileMustExist: true,
  });
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * The auth host's super-admin identity (what `keyport admin --data-dir` uses) as an in-process API
 * client: for tests that only look (resources, audit log) and need not start a CLI process per look.
 */
export async function connectAsAdmin(cluster: LabCluster): Promise<ClusterApi> {
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    address: string;
    caCertPem: string;
    keyPem: string;
    certPem: string;
  };
  return connectCluster({
    address: parseClusterAddress(identity.address),
    caPem: identity.caCertPem,
    caPin: cluster.caPin,
    clientKeyPem: identity.keyPem,
    clientCertPem: identity.certPem,
  });
}

/**
 * signUpUser without CLI processes, for tests whose subject is not signup: the admin API creates the user
 * and the client's signup ceremony runs in this process (trusting the cluster by its pin, saving the
 * trust under `home`, registering an OTP device with a current code).
 */
export async function signUpUserInProcess(
  cluster: LabCluster,
  home: string,
  user: string,
  roles: string[],
  password = `${user}-password-123`,
  logins: string[] = [user],
): Promise<SignedUpUser> {
  const admin = await connectAsAdmin(cluster);
  let token: string;
  try {
    token = (await admin.admin.createUser({ name: user, roles, traits: { logins: logins.join(',') } }))
      .signupToken;
  } finally {
    admin.close();
  }
  let secret = '';
  await signup({
    profiles: new ProfileStore(home),
    address: parseClusterAddress(cluster.address),
    token,
    caPin: cluster.caPin,
    prompts: {
      confirmCaPin: async () => false,
      newPassword: async () => password,
      showTotpEnrollment: async (totp) => void (secret = totp.secret),
      otpCode: async () => totpCode(secret, Date.now()),
    },
  });
  return { user, password, totpSecret: secret };
}

// ---------------------------------------------------------------------------------------------------
// keyport-auth with exactly the arguments a test gives (config files, restarts, refusals, crashes)

/** The launchers, for tests that drive a process directly (streaming its output, killing it mid-way). */
export const keyportAuthPath = authBin;
export const keyportCliPath = cliBin;

export interface KeyportAuthProcess extends LabCluster {
  /** What it printed on standard output only, and on standard error only. */
  stdout(): string;
  stderr(): string;
}

/**
 * Starts `keyport-auth` with exactly `args` (nothing added: no --listen, no --cluster-name) and waits until
 * it prints its CA pin and address. The data dir is the caller's: stop() leaves it in place, so a test can
 * restart on it or look at it.
 */
export async function startKeyportAuth(
  args: string[],
  options: { dataDir: string; clusterName?: string; env?: Record<string, string>; startTimeoutMs?: number },
): Promise<KeyportAuthProcess> {
  const child = spawn(process.execPath, [authBin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const started = await new Promise<{ caPin: string; address: string; webOrigin?: string }>(
    (resolveStart, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`keyport-auth did not start in time:\n${stdout}${stderr}`)),
        options.startTimeoutMs ?? 60_000,
      );
      child.stdout?.on('data', () => {
        const pin = /CA pin: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
        const address = /listening on (\S+)/.exec(stdout)?.[1];
        // The web UI's line comes before the address's.
        const webOrigin = /web UI on (\S+)/.exec(stdout)?.[1];
        if (pin && address) {
          clearTimeout(timer);
          resolveStart({ caPin: pin, address, ...(webOrigin ? { webOrigin } : {}) });
        }
      });
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`keyport-auth exited with ${code} before it was ready:\n${stdout}${stderr}`));
      });
    },
  );
  let stopping: Promise<number | null> | undefined;
  return {
    address: started.address,
    port: Number(started.address.split(':').pop()),
    caPin: started.caPin,
    ...(started.webOrigin ? { webOrigin: started.webOrigin } : {}),
    dataDir: options.dataDir,
    clusterName: options.clusterName ?? '',
    process: child,
    output: () => stdout + stderr,
    stdout: () => stdout,
    stderr: () => stderr,
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null && child.pid)
          process.kill(child.pid, signal);
        return exited;
      })();
      return stopping;
    },
  };
}

/**
 * Runs `keyport-auth` with exactly `args` until it exits: for start-ups that must be refused. Should it
 * start listening after all, it is stopped and the result has code null, so the test fails on the code.
 */
export function runKeyportAuth(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [authBin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: repoRoot,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/listening on /.test(stdout)) child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyport-auth ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/** GetClusterInfo, as a client sees the cluster before signing in: name, pin, second factors, rp_id, ... */
export async function getClusterInfo(cluster: Pick<LabCluster, 'address' | 'caPin' | 'dataDir'>) {
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  const api = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: identity.caCertPem,
    caPin: cluster.caPin,
  });
  try {
    return await api.auth.getClusterInfo({});
  } finally {
    api.close();
  }
}
