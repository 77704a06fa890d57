// keyport's ssh-agent against OpenSSH's own tools (issue 10, "The key seam": the session key served to
// OpenSSH through an agent socket of keyport's, never written to a file). A software signer over a file
// keystore kept outside the Keyport home, a user certificate from a temporary CA made with `ssh-keygen -s`,
// and the agent's socket in SSH_AUTH_SOCK: ssh-add lists the certificate and its fingerprint, ssh-keygen -Y
// signs through the agent and the signature verifies against the CA, key management is refused, and nothing
// under the home holds a private key.
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../client/keystore/file-store';
import { ProfileStore } from '../client/profiles';
import { keyportCliPath, loginUser, runKeyport, signUpUser, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { encodeSshPublicKeyBlob, sshPublicKeyParts } from '../client/keystore/session-key';
import type { SessionKeyAlgorithm } from '../client/keystore/session-key';
import { createSoftwareSigner } from '../client/keystore/signer';
import type { SessionSigner } from '../client/keystore/signer';
import { agentDirectory, profileIdentities, startSshAgent } from '../client/ssh-agent';
import type { AgentIdentity, SshAgent, SshAgentEvent } from '../client/ssh-agent';
import { AgentMessage, FrameDecoder, SignFlag, frame, parseAnswer } from '../client/ssh-agent/protocol';
import type { AgentAnswer } from '../client/ssh-agent/protocol';
import { sshString } from '../client/keystore/session-key';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the agent answers from this very process, so a spawnSync would deadlock. */
function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A raw agent connection: send a message, read one answer ('closed' if the agent hung up instead). */
class RawClient {
  private readonly decoder = new FrameDecoder();
  private readonly answers: Uint8Array[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.answers.push(...this.decoder.push(chunk));
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  async request(message: Uint8Array): Promise<AgentAnswer | 'closed'> {
    this.sendRaw(frame(message));
    return this.next();
  }

  async next(): Promise<AgentAnswer | 'closed'> {
    while (this.answers.length === 0 && !this.closed) {
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
    const answer = this.answers.shift();
    return answer ? parseAnswer(answer) : 'closed';
  }

  close(): void {
    this.socket.destroy();
  }
}

function signRequest(keyBlob: Uint8Array, data: Uint8Array, flags = 0): Uint8Array {
  const flagBytes = Buffer.alloc(4);
  flagBytes.writeUInt32BE(flags);
  return Buffer.concat([
    Uint8Array.of(AgentMessage.SIGN_REQUEST),
    sshString(keyBlob),
    sshString(data),
    flagBytes,
  ]);
}

const blobOfLine = (line: string): Buffer => Buffer.from(line.trim().split(/\s+/)[1] ?? '', 'base64');

/** Every regular file under `dir` whose text holds a PEM or OpenSSH private key. */
async function privateKeyFilesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile()) continue;
    const text = await readFile(path, 'latin1');
    if (/PRIVATE KEY/.test(text)) found.push(path);
  }
  return found;
}

let caDir: string;
let outside: string;

beforeAll(async () => {
  caDir = await mkdtemp(join(tmpdir(), 'keyport-agent-ca-'));
  outside = await mkdtemp(join(tmpdir(), 'keyport-agent-outside-'));
  const made = await run('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'keyport-test-ca',
    '-f',
    join(caDir, 'ca'),
  ]);
  expect(made.code, made.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all([caDir, outside].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.each<SessionKeyAlgorithm>(['ecdsa-p256', 'ed25519'])(
  'the agent with a %s session key',
  (algorithm) => {
    let home: string;
    let keysDir: string;
    let signer: SessionSigner;
    let certificate: string;
    let agent: SshAgent;
    let env: NodeJS.ProcessEnv;
    let current: AgentIdentity[];
    const events: SshAgentEvent[] = [];
    const certType =
      algorithm === 'ed25519'
        ? 'ssh-ed25519-cert-v01@openssh.com'
        : 'ecdsa-sha2-nistp256-cert-v01@openssh.com';

    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'keyport-agent-home-'));
      // The `--keystore file` opt-in's key lives outside the home, so the scan below sees only what the agent
      // and the certificate step leave there.
      keysDir = await mkdtemp(join(tmpdir(), 'keyport-agent-keys-'));
      signer = await createSoftwareSigner(new FileStore(keysDir), 'session', algorithm);
      await writeFile(join(home, 'session.pub'), `${signer.sshPublicKey}\n`);
      const signed = await run('ssh-keygen', [
        '-q',
        '-s',
        join(caDir, 'ca'),
        '-I',
        'kim',
        '-n',
        'kim',
        '-V',
        '-5m:+1h',
        join(home, 'session.pub'),
      ]);
      expect(signed.code, signed.stderr).toBe(0);
      certificate = (await readFile(join(home, 'session-cert.pub'), 'utf8')).trim();
      current = [{ signer, certificate, comment: 'kim@lab' }];
      agent = await startSshAgent({
        directory: agentDirectory(home),
        identities: () => current,
        onEvent: (event) => events.push(event),
      });
      env = { ...process.env, SSH_AUTH_SOCK: agent.socketPath };
    });

    afterAll(async () => {
      await agent?.close();
      await Promise.all(
        [home, keysDir].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })),
      );
    });

    it('lists the session certificate to ssh-add -L, with its comment', async () => {
      const listed = await run('ssh-add', ['-L'], { env });
      expect(listed.code, listed.stderr).toBe(0);
      const lines = listed.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const [type, base64, comment] = (lines[0] ?? '').split(' ');
      expect(type).toBe(certType);
      expect(Buffer.from(base64 ?? '', 'base64')).toEqual(blobOfLine(certificate));
      expect(comment).toBe('kim@lab');
    });

    it("shows the certificate's fingerprint to ssh-add -l", async () => {
      const listed = await run('ssh-add', ['-l'], { env });
      expect(listed.code, listed.stderr).toBe(0);
      const expected = await run('ssh-keygen', ['-l', '-f', join(home, 'session-cert.pub')]);
      const fingerprint = expected.stdout.split(' ')[1];
      expect(fingerprint).toMatch(/^SHA256:/);
      expect(listed.stdout).toContain(fingerprint);
      expect(listed.stdout).toContain(algorithm === 'ed25519' ? '(ED25519-CERT)' : '(ECDSA-CERT)');
    });

    it('signs for ssh-keygen -Y sign with the certificate, and -Y verify accepts it against the CA', async () => {
      const data = join(home, 'data.txt');
      await writeFile(data, `signed through keyport's agent (${algorithm})\n`);
      const signed = await run(
        'ssh-keygen',
        ['-Y', 'sign', '-f', join(home, 'session-cert.pub'), '-n', 'file', data],
        { env },
      );
      expect(signed.code, signed.stderr).toBe(0);
      const allowed = join(home, 'allowed_signers');
      const caPublic = (await readFile(join(caDir, 'ca.pub'), 'utf8')).trim();
      await writeFile(allowed, `kim cert-authority ${caPublic}\n`);
      const verified = await run(
        'ssh-keygen',
        ['-Y', 'verify', '-f', allowed, '-I', 'kim', '-n', 'file', '-s', `${data}.sig`],
        { input: await readFile(data) },
      );
      expect(verified.code, verified.stderr + verified.stdout).toBe(0);
      expect(verified.stdout).toMatch(/Good "file" signature for kim/);
      // The same signature over other data is refused: the check above is a real one.
      const tampered = await run(
        'ssh-keygen',
        ['-Y', 'verify', '-f', allowed, '-I', 'kim', '-n', 'file', '-s', `${data}.sig`],
        { input: 'other data\n' },
      );
      expect(tampered.code).not.toBe(0);
      expect(events).toContainEqual({ kind: 'signed', algorithm, certificate: true });
    });

    it('signs for ssh-keygen -Y sign with the plain public key, and -Y check-novalidate accepts it', async () => {
      const data = join(home, 'plain.txt');
      await writeFile(data, 'plain key\n');
      const signed = await run(
        'ssh-keygen',
        ['-Y', 'sign', '-f', join(home, 'session.pub'), '-n', 'file', data],
        { env },
      );
      expect(signed.code, signed.stderr).toBe(0);
      const checked = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'file', '-s', `${data}.sig`], {
        input: await readFile(data),
      });
      expect(checked.code, checked.stderr + checked.stdout).toBe(0);
      expect(checked.stdout).toMatch(/Good "file" signature with (ECDSA|ED25519) key SHA256:/);
      expect(events).toContainEqual({ kind: 'signed', algorithm, certificate: false });
    });

    it('passes ssh-add -T (sign and verify) for the certificate and for the plain key', async () => {
      for (const file of ['session-cert.pub', 'session.pub']) {
        const tested = await run('ssh-add', ['-T', join(home, file)], { env });
        expect(tested.code, `${file}: ${tested.stderr}`).toBe(0);
      }
      // And fails for a key the agent does not hold, so the check above means something.
      const stranger = join(outside, `stranger-${algorithm}`);
      const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      expect(made.code, made.stderr).toBe(0);
      expect((await run('ssh-add', ['-T', `${stranger}.pub`], { env })).code).not.toBe(0);
    });

    it('refuses ssh-add -D and ssh-add of a key file, and still holds the session key', async () => {
      const removed = await run('ssh-add', ['-D'], { env });
      expect(removed.code).not.toBe(0);
      expect(removed.stderr).toMatch(/Failed to remove all identities/);

      const otherKey = join(outside, `other-${algorithm}`);
      if (!existsSync(otherKey)) {
        const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
        expect(made.code, made.stderr).toBe(0);
      }
      const added = await run('ssh-add', [otherKey], { env });
      expect(added.code).not.toBe(0);
      expect(added.stderr).toMatch(/Could not add identity/);

      const deleted = await run('ssh-add', ['-d', join(home, 'session.pub')], { env });
      expect(deleted.code).not.toBe(0);

      const listed = await run('ssh-add', ['-L'], { env });
      expect(listed.stdout.trim().split('\n')).toHaveLength(1);
      expect(listed.stdout).toContain(certType);
      expect(events).toContainEqual({ kind: 'refused', request: 'SSH_AGENTC_REMOVE_ALL_IDENTITIES' });
      expect(events).toContainEqual({ kind: 'refused', request: 'SSH_AGENTC_ADD_IDENTITY' });
      expect(events).toContainEqual({ kind: 'refused', request: 'SSH_AGENTC_REMOVE_IDENTITY' });
    });

    it('answers lock, unlock and unknown extensions such as session-bind@openssh.com with SSH_AGENT_FAILURE', async () => {
      const client = await RawClient.open(agent.socketPath);
      try {
        expect(
          await client.request(Buffer.concat([Uint8Array.of(AgentMessage.LOCK), sshString('pw')])),
        ).toEqual({ kind: 'failure' });
        expect(
          await client.request(Buffer.concat([Uint8Array.of(AgentMessage.UNLOCK), sshString('pw')])),
        ).toEqual({ kind: 'failure' });
        const bind = Buffer.concat([
          Uint8Array.of(AgentMessage.EXTENSION),
          sshString('session-bind@openssh.com'),
          sshString(new Uint8Array(51)),
          sshString(new Uint8Array(32)),
          sshString(new Uint8Array(83)),
          Uint8Array.of(0),
        ]);
        expect(await client.request(bind)).toEqual({ kind: 'failure' });
        expect(
          await client.request(Buffer.concat([Uint8Array.of(AgentMessage.EXTENSION), sshString('query')])),
        ).toEqual({ kind: 'failure' });
        expect(await client.request(Uint8Array.of(200))).toEqual({ kind: 'failure' });
        // The connection is still good after every refusal.
        expect(await client.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toMatchObject({
          kind: 'identities',
        });
      } finally {
        client.close();
      }
    });

    it('answers a sign request for a key it does not hold with SSH_AGENT_FAILURE, and ignores the RSA hash flags', async () => {
      const client = await RawClient.open(agent.socketPath);
      try {
        const other = encodeSshPublicKeyBlob(sshPublicKeyParts(generateKeyPairSync('ed25519').publicKey));
        expect(await client.request(signRequest(other, Buffer.from('data')))).toEqual({ kind: 'failure' });
        expect(events).toContainEqual({ kind: 'unknown-key' });
        const answer = await client.request(
          signRequest(
            blobOfLine(certificate),
            Buffer.from('data'),
            SignFlag.RSA_SHA2_256 | SignFlag.RSA_SHA2_512,
          ),
        );
        expect(answer).toMatchObject({ kind: 'signature' });
      } finally {
        client.close();
      }
    });

    it('closes a connection that sends a malformed message or an oversize frame, and only that one', async () => {
      const [bystander, truncated, oversize] = await Promise.all([
        RawClient.open(agent.socketPath),
        RawClient.open(agent.socketPath),
        RawClient.open(agent.socketPath),
      ]);
      try {
        // A sign request whose key blob claims more bytes than the message has.
        expect(await truncated.request(Buffer.from('0d000000ff01', 'hex'))).toBe('closed');
        oversize.sendRaw(Buffer.from('7fffffff', 'hex'));
        expect(await oversize.next()).toBe('closed');
        expect(await bystander.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toMatchObject({
          kind: 'identities',
        });
        expect(
          events
            .filter((event) => event.kind === 'malformed')
            .map((event) => event.kind === 'malformed' && event.error.reason),
        ).toEqual(expect.arrayContaining(['TRUNCATED', 'FRAME_TOO_LARGE']));
      } finally {
        for (const client of [bystander, truncated, oversize]) client.close();
      }
    });

    it('follows the identity provider at every request', async () => {
      const saved = current;
      try {
        current = [];
        const none = await run('ssh-add', ['-L'], { env });
        expect(none.code).not.toBe(0);
        expect(none.stdout + none.stderr).toMatch(/no identities/);
        current = [{ signer, comment: 'plain' }];
        const plain = await run('ssh-add', ['-L'], { env });
        expect(plain.stdout.trim()).toBe(`${signer.sshPublicKey} plain`);
      } finally {
        current = saved;
      }
    });

    it("does not offer a certificate that is not for the signer's key", async () => {
      const saved = current;
      try {
        const otherSigner = await createSoftwareSigner(new FileStore(keysDir), 'other', algorithm);
        current = [{ signer: otherSigner, certificate, comment: 'mismatch' }];
        const listed = await run('ssh-add', ['-L'], { env });
        expect(listed.stdout + listed.stderr).toMatch(/no identities/);
        expect(events.some((event) => event.kind === 'identities-failed')).toBe(true);
      } finally {
        current = saved;
      }
    });

    it('serves from a 0600 socket in a 0700 directory, and leaves no private key under the home', async () => {
      const socket = await lstat(agent.socketPath);
      expect(socket.isSocket()).toBe(true);
      expect(socket.mode & 0o777).toBe(0o600);
      expect((await stat(agentDirectory(home))).mode & 0o777).toBe(0o700);
      expect(await readdir(agentDirectory(home))).toEqual(['agent.sock']);
      expect(await privateKeyFilesUnder(home)).toEqual([]);
      // The scan finds a key where there is one: the keystore, kept outside the home on purpose.
      expect(await privateKeyFilesUnder(keysDir)).toHaveLength(2);
    });
  },
);

describe('the agent socket', () => {
  let home: string;
  let signer: SessionSigner;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'keyport-agent-sock-'));
    signer = await createSoftwareSigner(new FileStore(join(outside, 'keys')), 'socket-test', 'ed25519');
  });

  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('is removed on close, and close twice is harmless', async () => {
    const agent = await startSshAgent({ directory: join(home, 'a'), identities: () => [{ signer }] });
    expect(existsSync(agent.socketPath)).toBe(true);
    await agent.close();
    await agent.close();
    expect(existsSync(agent.socketPath)).toBe(false);
    const listed = await run('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.socketPath } });
    expect(listed.code).toBe(2);
  });

  it('closes its open connections on close', async () => {
    const agent = await startSshAgent({ directory: join(home, 'b'), identities: () => [{ signer }] });
    const client = await RawClient.open(agent.socketPath);
    await agent.close();
    expect(await client.next()).toBe('closed');
  });

  it('refuses a second agent on a live socket, and replaces a stale one', async () => {
    const directory = join(home, 'c');
    const first = await startSshAgent({ directory, identities: () => [{ signer }] });
    await expect(startSshAgent({ directory, identities: () => [] })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    // A stale socket: one whose agent was killed before it could remove it.
    await first.close();
    await makeStaleSocket(join(directory, 'agent.sock'));
    const second = await startSshAgent({ directory, identities: () => [{ signer }] });
    const listed = await run('ssh-add', ['-L'], {
      env: { ...process.env, SSH_AUTH_SOCK: second.socketPath },
    });
    expect(listed.code, listed.stderr).toBe(0);
    await second.close();
  });

  it('refuses a directory open to others, and a path that is not a socket', async () => {
    const open = join(home, 'open');
    await mkdir(open, { mode: 0o700 });
    await chmod(open, 0o755);
    await expect(startSshAgent({ directory: open, identities: () => [] })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
    const occupied = join(home, 'occupied');
    await mkdir(occupied, { mode: 0o700 });
    await writeFile(join(occupied, 'agent.sock'), 'not a socket');
    await expect(startSshAgent({ directory: occupied, identities: () => [] })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
    expect(await readFile(join(occupied, 'agent.sock'), 'utf8')).toBe('not a socket');
  });

  it('closes connections over its limit at once', async () => {
    const events: SshAgentEvent[] = [];
    const agent = await startSshAgent({
      directory: join(home, 'd'),
      identities: () => [{ signer }],
      maxConnections: 2,
      onEvent: (event) => events.push(event),
    });
    try {
      const clients = await Promise.all([0, 1].map(() => RawClient.open(agent.socketPath)));
      for (const client of clients) {
        expect(await client.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toMatchObject({
          kind: 'identities',
        });
      }
      const third = await RawClient.open(agent.socketPath);
      expect(await third.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toBe('closed');
      expect(events).toContainEqual({ kind: 'connection-refused' });
      clients[0]?.close();
      await expect
        .poll(async () => {
          const client = await RawClient.open(agent.socketPath);
          const answer = await client.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES));
          client.close();
          return answer === 'closed' ? 'closed' : answer.kind;
        })
        .toBe('identities');
      for (const client of clients) client.close();
    } finally {
      await agent.close();
    }
  });
});

describe('the agent under hostile or slow use', () => {
  let home: string;
  let signer: SessionSigner;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'keyport-agent-use-'));
    signer = await createSoftwareSigner(new FileStore(join(outside, 'keys')), 'use-test', 'ecdsa-p256');
  });

  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('keeps serving whatever bytes its connections send', async () => {
    const events: SshAgentEvent[] = [];
    const agent = await startSshAgent({
      directory: join(home, 'fuzz'),
      identities: () => [{ signer }],
      onEvent: (event) => events.push(event),
    });
    const bystander = await RawClient.open(agent.socketPath);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 4 }),
          async (chunks) => {
            const client = await RawClient.open(agent.socketPath);
            for (const chunk of chunks) client.sendRaw(chunk);
            client.close();
            expect(await bystander.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toMatchObject({
              kind: 'identities',
            });
          },
        ),
        { numRuns: 200 },
      );
      expect(events.every((event) => event.kind !== 'sign-failed')).toBe(true);
    } finally {
      bystander.close();
      await agent.close();
    }
  });

  it('answers other connections while one waits on a slow signer (a card waiting for a touch)', async () => {
    let touch: () => void = () => {};
    const touched = new Promise<void>((resolve) => (touch = resolve));
    const slow: SessionSigner = {
      ...signer,
      sign: async (data) => {
        await touched;
        return signer.sign(data);
      },
    };
    const agent = await startSshAgent({
      directory: join(home, 'slow'),
      identities: () => [{ signer: slow }],
    });
    try {
      const [waiting, other] = await Promise.all([
        RawClient.open(agent.socketPath),
        RawClient.open(agent.socketPath),
      ]);
      const signature = waiting.request(signRequest(blobOfLine(signer.sshPublicKey), Buffer.from('data')));
      expect(await other.request(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES))).toMatchObject({
        kind: 'identities',
      });
      touch();
      expect(await signature).toMatchObject({ kind: 'signature' });
      waiting.close();
      other.close();
    } finally {
      await agent.close();
    }
  });

  it('answers pipelined requests on one connection in order', async () => {
    const agent = await startSshAgent({ directory: join(home, 'pipe'), identities: () => [{ signer }] });
    try {
      const client = await RawClient.open(agent.socketPath);
      const key = blobOfLine(signer.sshPublicKey);
      client.sendRaw(
        Buffer.concat([
          frame(signRequest(key, Buffer.from('one'))),
          frame(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES)),
          frame(Uint8Array.of(AgentMessage.REMOVE_ALL_IDENTITIES)),
          frame(signRequest(key, Buffer.from('two'))),
        ]),
      );
      const kinds = [];
      for (let i = 0; i < 4; i += 1) {
        const answer = await client.next();
        kinds.push(answer === 'closed' ? 'closed' : answer.kind);
      }
      expect(kinds).toEqual(['signature', 'identities', 'failure', 'signature']);
      client.close();
    } finally {
      await agent.close();
    }
  });
});

/** A UNIX socket file with nobody listening: what an agent killed with SIGKILL leaves behind. */
async function makeStaleSocket(path: string): Promise<void> {
  const made = await run(process.execPath, [
    '-e',
    `const s=require('net').createServer();s.listen(${JSON.stringify(path)},()=>process.kill(process.pid,'SIGKILL'))`,
  ]);
  expect(made.code).toBe(null);
  expect((await lstat(path)).isSocket()).toBe(true);
}

/**
 * The signature key of an OpenSSH user certificate (PROTOCOL.certkeys): the string before the signature, after
 * the key's fields, serial, type, key id, principals, validity, options, extensions and reserved.
 */
function certificateSigningKey(certificateLine: string): string {
  const blob = blobOfLine(certificateLine);
  let offset = 0;
  const string = (): Buffer => {
    const length = blob.readUInt32BE(offset);
    const value = blob.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value;
  };
  const type = string().toString();
  string(); // nonce
  if (type.startsWith('ecdsa-sha2-nistp256')) string(); // curve
  string(); // public key (point or 32 bytes)
  offset += 8 + 4; // serial, type
  string(); // key id
  string(); // principals
  offset += 16; // valid after, valid before
  string(); // critical options
  string(); // extensions
  string(); // reserved
  const caKey = string();
  const caType = caKey.subarray(4, 4 + caKey.readUInt32BE(0)).toString();
  return `${caType} ${caKey.toString('base64')}`;
}

describe("with a real keyport login (the keyport-auth lab cluster's session certificate)", () => {
  let cluster: LabCluster;
  let home: string;
  let agent: SshAgent;
  let env: NodeJS.ProcessEnv;
  let certificatePath: string;

  beforeAll(async () => {
    [cluster, home] = await Promise.all([
      startLabCluster({ clusterName: 'agent' }),
      mkdtemp(join(tmpdir(), 'keyport-agent-login-')),
    ]);
    const kim = await signUpUser(cluster, home, 'kim', ['access']);
    const login = await loginUser(cluster, home, kim, ['--keystore', 'file']);
    expect(login.code, login.stderr).toBe(0);
    const profiles = new ProfileStore(home);
    certificatePath = profiles.sshCertificatePath(cluster.address);
    agent = await startSshAgent({ directory: agentDirectory(home), identities: profileIdentities(profiles) });
    env = { ...process.env, SSH_AUTH_SOCK: agent.socketPath };
  }, 180_000);

  afterAll(async () => {
    await agent?.close();
    await cluster?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("lists the profile's certificate and signs with its session key; the signature verifies against the cluster's SSH CA", async () => {
    const certificate = (await readFile(certificatePath, 'utf8')).trim();
    const listed = await run('ssh-add', ['-L'], { env });
    expect(listed.code, listed.stderr).toBe(0);
    expect(blobOfLine(listed.stdout)).toEqual(blobOfLine(certificate));
    expect(listed.stdout.trim()).toMatch(/ kim@agent$/);

    const data = join(home, 'data.txt');
    await writeFile(data, 'signed with the session key of a real login\n');
    const signed = await run('ssh-keygen', ['-Y', 'sign', '-f', certificatePath, '-n', 'file', data], {
      env,
    });
    expect(signed.code, signed.stderr).toBe(0);
    const allowed = join(home, 'allowed_signers');
    await writeFile(allowed, `kim cert-authority ${certificateSigningKey(certificate)}\n`);
    const verified = await run(
      'ssh-keygen',
      ['-Y', 'verify', '-f', allowed, '-I', 'kim', '-n', 'file', '-s', `${data}.sig`],
      { input: await readFile(data) },
    );
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
  });

  it('`keyport agent` serves the same session from the command line, prints SSH_AUTH_SOCK, and removes its socket on SIGTERM', async () => {
    const socketDir = join(home, 'cli-agent');
    const child = spawn(process.execPath, [keyportCliPath, 'agent', '--socket-dir', socketDir], {
      env: { ...process.env, KEYPORT_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0] ?? '');
        });
        child.once('exit', (code) => reject(new Error(`keyport agent exited ${code} before its socket`)));
      });
      const socketPath = join(socketDir, 'agent.sock');
      expect(line).toBe(`SSH_AUTH_SOCK=${socketPath}; export SSH_AUTH_SOCK;`);
      const listed = await run('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: socketPath } });
      expect(listed.code, listed.stderr).toBe(0);
      expect(blobOfLine(listed.stdout)).toEqual(blobOfLine((await readFile(certificatePath, 'utf8')).trim()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await readdir(socketDir)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('holds nothing once the person logs out, without a restart', async () => {
    const logout = await runKeyport(['logout'], { home });
    expect(logout.code, logout.stderr).toBe(0);
    const listed = await run('ssh-add', ['-L'], { env });
    expect(listed.stdout + listed.stderr).toMatch(/no identities/);
    // The agent wrote nothing but its socket.
    expect(await readdir(agentDirectory(home))).toEqual(['agent.sock']);
  });
});
