// A software TPM for tests, benchmarks and the demo: swtpm on loopback TCP with its own TPM
// manufacturer CA, so the EK certificate verifies against a CA the test holds. One per test worker
// (there is no resource manager: a TPM holds three transient objects at a time).
// Recipe: shared/design/LAB.md "Software TPM". Debian packages: swtpm, swtpm-tools (gnutls-bin's certtool).
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface LabTpm {
  /** The TCTI string for the helper and tpm2-tools: swtpm:host=127.0.0.1,port=P. */
  tcti: string;
  /** The command port; the control port is port + 1. */
  port: number;
  /** Holds the TPM state (tpm/) and the manufacturer CA (ca/); a restart on it keeps the EK and AKs. */
  stateDir: string;
  /** The CA that signed the EK certificate (the lab "TPM manufacturer"), PEM. */
  manufacturerCaPem: string;
  /** What a child process needs to use this TPM: merge it over process.env. */
  env: { KEYPORT_TPM_TCTI: string };
  /** Ends this swtpm (by its PID); removes the state dir only when startLabTpm made it. Safe twice. */
  stop(): Promise<void>;
}

export interface LabTpmOptions {
  /** Reused when it holds a TPM already; created and manufactured otherwise. */
  stateDir?: string;
}

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;
const PORT_ATTEMPTS = 10;

export async function startLabTpm(options: LabTpmOptions = {}): Promise<LabTpm> {
  const ownDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'keyport-tpm-'));
  try {
    await manufacture(stateDir);
    const { child, port } = await startSwtpm(join(stateDir, 'tpm'));
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    let stopped: Promise<void> | undefined;
    return {
      tcti,
      port,
      stateDir,
      manufacturerCaPem: readFileSync(join(stateDir, 'ca', 'issuercert.pem'), 'utf8'),
      env: { KEYPORT_TPM_TCTI: tcti },
      stop() {
        stopped ??= (async () => {
          await endChild(child);
          if (ownDir) rmSync(stateDir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (error) {
    if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/** First use of a state dir: the manufacturer CA, then a TPM with an EK and its certificate. */
async function manufacture(stateDir: string): Promise<void> {
  const tpmDir = join(stateDir, 'tpm');
  if (existsSync(join(tpmDir, 'tpm2-00.permall'))) return;
  const caDir = join(stateDir, 'ca');
  mkdirSync(tpmDir, { recursive: true, mode: 0o700 });
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  // Never /etc's defaults: they keep the CA in /var/lib/swtpm-localca, shared by every TPM on the machine.
  const localcaConf = join(stateDir, 'swtpm-localca.conf');
  writeFileSync(
    localcaConf,
    [
      `statedir = ${caDir}`,
      `signingkey = ${join(caDir, 'signkey.pem')}`,
      `issuercert = ${join(caDir, 'issuercert.pem')}`,
      `certserial = ${join(caDir, 'certserial')}`,
      '',
    ].join('\n'),
  );
  const localcaOptions = join(stateDir, 'swtpm-localca.options');
  writeFileSync(
    localcaOptions,
    '--platform-manufacturer Keyport-Lab\n--platform-version 1.0\n--platform-model lab-swtpm\n',
  );
  const setupConf = join(stateDir, 'swtpm_setup.conf');
  writeFileSync(
    setupConf,
    [
      'create_certs_tool = /usr/bin/swtpm_localca',
      `create_certs_tool_config = ${localcaConf}`,
      `create_certs_tool_options = ${localcaOptions}`,
      'active_pcr_banks = sha256',
      '',
    ].join('\n'),
  );
  try {
    await execFileAsync(
      'swtpm_setup',
      [
        '--tpm2',
        '--tpmstate',
        tpmDir,
        '--config',
        setupConf,
        '--create-ek-cert',
        '--create-platform-cert',
        '--overwrite',
      ],
      { timeout: 60_000 },
    );
  } catch (error) {
    const e = error as { code?: string; stderr?: string; stdout?: string };
    if (e.code === 'ENOENT')
      throw new Error(
        'startLabTpm: swtpm_setup not found (Debian: swtpm swtpm-tools; npm test installs them)',
        { cause: error },
      );
    throw new Error(`startLabTpm: swtpm_setup failed: ${(e.stderr || e.stdout || String(error)).trim()}`, {
      cause: error,
    });
  }
}

/** A loopback port P such that P + 1 is free too, at the moment of asking. */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (port > 0 && port < 65535 && (await listenOnce(port + 1)) > 0) return port;
  }
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(-1));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const chosen = typeof address === 'object' && address ? address.port : -1;
      server.close(() => resolve(chosen));
    });
  });
}

async function startSwtpm(tpmDir: string): Promise<{ child: ChildProcess; port: number }> {
  let lastError = '';
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePortPair();
    const child = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--tpmstate',
        `dir=${tpmDir}`,
        '--flags',
        'not-need-init,startup-clear',
        '--server',
        `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (error) => resolve(`cannot start swtpm: ${error.message}`));
      child.once('exit', (code, signal) => resolve(`swtpm exited (${code ?? signal}): ${stderr.trim()}`));
    });
    const ready = await Promise.race([waitForPort(port), exited]);
    if (ready === true) return { child, port };
    await endChild(child);
    lastError = typeof ready === 'string' ? ready : 'swtpm did not accept connections in time';
    // Another process took a port between the check and swtpm's bind: try another pair.
    if (!/address already in use|bind/i.test(lastError)) break;
  }
  throw new Error(`startLabTpm: ${lastError}`);
}

async function waitForPort(port: number): Promise<true | string> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const connected = await new Promise<boolean>((resolve) => {
      // The control port: a probe there does not touch the TPM command channel.
      const socket = createConnection({ port: port + 1, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return 'swtpm did not accept connections in time';
}

async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
