// The TPM, through keyport-tpm-helper (native/tpm-helper): a long-lived child process spoken to in JSON
// lines. One request in flight at a time; a helper that dies is started again once per request, and
// the request retried once. Errors are KeyportErrors: UNAVAILABLE when there is no helper or no TPM,
// PRECONDITION_FAILED when the TPM refuses, INTERNAL for an answer that makes no sense.
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KeyportError } from '../../../proto/errors';
import {
  DEFAULT_TCTI,
  decodeResult,
  encodeRequest,
  HelperProtocolError,
  MAX_ANSWER_LINE,
  parseAnswerLine,
  toKeyportError,
} from './protocol';
import type { HelperAnswer, HelperOp, HelperResult, RequestField } from './protocol';

export interface TpmKey {
  publicArea: Uint8Array;
  name: Uint8Array;
  handle: number;
}

export interface Tpm {
  info(): Promise<{ manufacturer: string; firmware: string; tcti: string }>;
  endorsementKey(): Promise<{ publicArea: Uint8Array; certificateDer?: Uint8Array }>;
  /** The persisted attestation key, or undefined when there is none. */
  attestationKey(): Promise<TpmKey | undefined>;
  /** A new attestation key, replacing the persisted one. */
  createAttestationKey(): Promise<TpmKey>;
  activateCredential(credential: Uint8Array, secret: Uint8Array): Promise<Uint8Array>;
  quote(nonce: Uint8Array): Promise<{ attest: Uint8Array; signature: Uint8Array }>;
  close(): Promise<void>;
}

/** The helper's own extras: its process (for tests) and the benchmark floor. */
export interface TpmHelper extends Tpm {
  /** The running helper's PID, or undefined between a crash and the next request. */
  readonly pid: number | undefined;
  /** Times `count` direct Esys_Quote calls inside the helper: the floor of `quote`. */
  rawQuoteBench(count: number): Promise<{ medianUs: number; p90Us: number }>;
}

export interface OpenTpmOptions {
  /** A TCTI string: device:/dev/tpmrm0 (default), swtpm:host=127.0.0.1,port=P, … */
  tcti?: string;
  helperPath?: string;
  env?: NodeJS.ProcessEnv;
}

const HELPER_NAME = 'keyport-tpm-helper';
/** A bound on a hang, not on speed: a real TPM's RSA key generation can take seconds. */
const REQUEST_TIMEOUT_MS = 120_000;
const CLOSE_GRACE_MS = 3_000;

export function resolveHelperPath(options: OpenTpmOptions = {}): string {
  const env = options.env ?? process.env;
  if (options.helperPath) return options.helperPath;
  if (env.KEYPORT_TPM_HELPER) return env.KEYPORT_TPM_HELPER;
  const inRepo = fileURLToPath(new URL(`../../../native/tpm-helper/build/${HELPER_NAME}`, import.meta.url));
  if (executable(inRepo)) return inRepo;
  // Packaged app: electron-builder's extraResources puts it beside app.asar.
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (resources) return join(resources, HELPER_NAME);
  return inRepo;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Starts the helper and asks the TPM who it is: a missing helper or TPM fails here. */
export async function openTpm(options: OpenTpmOptions = {}): Promise<TpmHelper> {
  const env = options.env ?? process.env;
  const tcti = options.tcti ?? env.KEYPORT_TPM_TCTI ?? DEFAULT_TCTI;
  const client = new HelperClient(resolveHelperPath(options), tcti, { ...env, KEYPORT_TPM_TCTI: tcti });
  try {
    await client.info();
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** Why an exchange ended without an answer: the process died (retryable once) or something else. */
class HelperExited extends Error {}

interface Running {
  child: Child;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  lines: string[];
  partial: string;
  waiter: (() => void) | undefined;
  dead: boolean;
  stderr: string;
  spawnError: Error | undefined;
}

class HelperClient implements TpmHelper {
  private running: Running | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly tcti: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get pid(): number | undefined {
    return this.running && !this.running.dead ? this.running.child.pid : undefined;
  }

  async info() {
    return this.call('info');
  }

  async endorsementKey() {
    const ek = await this.call('ek');
    return ek.certificate
      ? { publicArea: ek.public, certificateDer: ek.certificate }
      : { publicArea: ek.public };
  }

  async attestationKey(): Promise<TpmKey | undefined> {
    try {
      const ak = await this.call('load_ak');
      return { publicArea: ak.public, name: ak.name, handle: ak.handle };
    } catch (error) {
      if (error instanceof KeyportError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  async createAttestationKey(): Promise<TpmKey> {
    const ak = await this.call('create_ak');
    return { publicArea: ak.public, name: ak.name, handle: ak.handle };
  }

  async activateCredential(credential: Uint8Array, secret: Uint8Array): Promise<Uint8Array> {
    if (credential.length === 0 || credential.length > 512)
      throw new KeyportError('INVALID_ARGUMENT', 'The credential blob must be 1 to 512 bytes', {
        fieldPath: 'credential',
      });
    if (secret.length === 0 || secret.length > 512)
      throw new KeyportError('INVALID_ARGUMENT', 'The encrypted secret must be 1 to 512 bytes', {
        fieldPath: 'secret',
      });
    const answer = await this.call('activate', {
      credential: Buffer.from(credential).toString('base64'),
      secret: Buffer.from(secret).toString('base64'),
    });
    return answer.cert_info;
  }

  async quote(nonce: Uint8Array) {
    if (nonce.length === 0 || nonce.length > 64)
      throw new KeyportError('INVALID_ARGUMENT', 'A quote nonce must be 1 to 64 bytes', {
        fieldPath: 'nonce',
      });
    return this.call('quote', { nonce: Buffer.from(nonce).toString('base64') });
  }

  async rawQuoteBench(count: number) {
    const result = await this.call('raw_quote_bench', { count });
    return { medianUs: result.median_us, p90Us: result.p90_us };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => {});
    const running = this.running;
    this.running = undefined;
    if (!running || running.dead) return;
    try {
      running.child.stdin.write(encodeRequest(this.nextId++, 'close'));
      running.child.stdin.end();
    } catch {
      // Its stdin is gone: the bound below ends it.
    }
    const timer = setTimeout(() => running.child.kill('SIGKILL'), CLOSE_GRACE_MS);
    await running.exited;
    clearTimeout(timer);
  }

  /** One request at a time, in the order asked. */
  private call<Op extends HelperOp>(
    op: Op,
    fields: Record<string, RequestField> = {},
  ): Promise<HelperResult<Op>> {
    const result = this.queue.then(() => this.send(op, fields));
    this.queue = result.catch(() => {});
    return result;
  }

  private async send<Op extends HelperOp>(
    op: Op,
    fields: Record<string, RequestField>,
  ): Promise<HelperResult<Op>> {
    if (this.closed) throw new KeyportError('UNAVAILABLE', 'The TPM connection is closed');
    let restarted = false;
    for (;;) {
      if (!this.running || this.running.dead) {
        if (this.running) {
          // It died since the last request: that is this request's one restart.
          if (restarted) throw this.crashed(this.running);
          restarted = true;
        }
        this.running = this.start();
      }
      const running = this.running;
      try {
        return await this.exchange(running, op, fields);
      } catch (error) {
        if (!(error instanceof HelperExited)) throw error;
        if (running.spawnError) throw this.cannotStart(running.spawnError);
        if (restarted) throw this.crashed(running);
        restarted = true;
        this.running = this.start();
      }
    }
  }

  private start(): Running {
    if (!executable(this.path)) throw this.cannotStart(new Error('no executable file there'));
    const child = spawn(this.path, [], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const running: Running = {
      child,
      exited: Promise.resolve(),
      lines: [],
      partial: '',
      waiter: undefined,
      dead: false,
      stderr: '',
      spawnError: undefined,
    };
    const wake = () => {
      const waiter = running.waiter;
      running.waiter = undefined;
      waiter?.();
    };
    running.exited = new Promise<void>((resolve) => {
      child.once('error', (error) => {
        running.spawnError = error;
        running.dead = true;
        wake();
        resolve();
      });
      child.once('close', () => {
        running.dead = true;
        wake();
        resolve();
      });
    });
    // A write to a helper that has just died must not crash the process; the exit says what happened.
    child.stdin.on('error', () => {});
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      let text = running.partial + chunk;
      let newline = text.indexOf('\n');
      while (newline >= 0) {
        running.lines.push(text.slice(0, newline));
        text = text.slice(newline + 1);
        newline = text.indexOf('\n');
      }
      running.partial = text;
      if (running.partial.length > MAX_ANSWER_LINE) {
        running.lines.push(running.partial);
        running.partial = '';
      }
      if (running.lines.length > 0) wake();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      running.stderr = (running.stderr + chunk).slice(-2048);
    });
    return running;
  }

  private async exchange<Op extends HelperOp>(
    running: Running,
    op: Op,
    fields: Record<string, RequestField>,
  ): Promise<HelperResult<Op>> {
    const id = this.nextId++;
    running.child.stdin.write(encodeRequest(id, op, fields));
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    for (;;) {
      const line = running.lines.shift();
      if (line !== undefined) {
        const answer = this.parse(running, line);
        if (answer.id !== id && answer.id !== null) continue; // an answer to a request abandoned earlier
        if (answer.ok) {
          try {
            return decodeResult(op, answer.fields);
          } catch (error) {
            throw this.nonsense(running, error);
          }
        }
        throw toKeyportError(answer.error, this.tcti);
      }
      if (running.dead) throw new HelperExited();
      const waited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
        running.waiter = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!waited) {
        running.child.kill('SIGKILL');
        throw new KeyportError('UNAVAILABLE', `The TPM helper did not answer ${op} in time; it was stopped`);
      }
    }
  }

  private parse(running: Running, line: string): HelperAnswer {
    try {
      return parseAnswerLine(line);
    } catch (error) {
      throw this.nonsense(running, error);
    }
  }

  /** A malformed answer: the helper is out of step, so it is ended and the next request starts anew. */
  private nonsense(running: Running, error: unknown): KeyportError {
    running.child.kill('SIGKILL');
    running.dead = true;
    const reason = error instanceof HelperProtocolError ? error.message : String(error);
    return new KeyportError('INTERNAL', `The TPM helper (${this.path}) answered nonsense: ${reason}`);
  }

  private cannotStart(error: Error): KeyportError {
    return new KeyportError(
      'UNAVAILABLE',
      `Cannot start the TPM helper ${this.path}: ${error.message}. Build it with ` +
        '`node native/tpm-helper/build.mjs` (needs gcc, pkg-config and libtss2-dev; `npm install` does it), ' +
        'or point KEYPORT_TPM_HELPER at it.',
    );
  }

  private crashed(running: Running): KeyportError {
    const { exitCode, signalCode } = running.child;
    const why = signalCode ? `signal ${signalCode}` : `exit code ${exitCode ?? 'unknown'}`;
    const stderr = running.stderr.trim();
    return new KeyportError(
      'UNAVAILABLE',
      `The TPM helper ${this.path} stopped twice (${why})${stderr ? `: ${stderr.slice(-300)}` : ''}`,
    );
  }
}
