// SSH to stock OpenSSH nodes (issue 11, seed "Per-session MFA"), through real processes: keyport-auth with
// WebAuthn, a lab security key, real sshd processes on 127.0.0.1 whose AuthorizedPrincipalsCommand is
// keyport-node, and the keyport CLI running the system ssh. The roles are the seed's Jerry and Olga
// example, word for word.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { fromServiceError } from '../proto/errors';
import type { KeyportError } from '../proto/errors';
import { NodeServiceClient } from '../proto/gen/keyport/v1/node';
import { ProfileStore } from '../client/profiles';
import { answerChallenge } from '../client/ceremonies/mfa';
import { parseClusterAddress } from '../client/cluster-trust';
import { connectAsProfile, webauthnOrigin } from '../client/session';
import { prepareSsh } from '../client/ssh/session';
import type { PreparedSsh } from '../client/ssh/session';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { openClusterDb, runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';
import { ensureLabAccounts, labNodeCommand, sshWithAgent, startLabNode } from '../lab/sshd';
import type { LabSshd, NodeCommand } from '../lab/sshd';

const ROLES_YAML = `# access-dev.yaml
kind: role
version: v7
metadata:
  name: access-dev
spec:
  allow:
    node_labels:
      env: dev
    logins:
      - jerry
---
# access-prod.yaml
kind: role
version: v7
metadata:
  name: access-prod
spec:
  options:
    # require per-session MFA for production access
    require_session_mfa: true
  allow:
    node_labels:
      env: prod
    logins:
      - jerry
  deny: {}
`;

let work: string;
let clock: LabClock;
let cluster: LabCluster;
let key: SoftKey;
let nodeCommand: NodeCommand;
const sshds: Record<string, LabSshd> = {};
const home = () => join(work, 'home');
const password = 'jerry-password-123';

function cli(args: string[], input: string[] = []): Promise<CliResult> {
  return runKeyport(args, {
    home: home(),
    input,
    env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...clock.env },
    timeoutMs: 60_000,
  });
}

async function addNode(
  name: string,
  labels: string,
  tamper?: (dir: string) => Promise<void>,
): Promise<LabSshd> {
  const sshd = await startLabNode(cluster, {
    name,
    labels,
    dir: join(work, `node-${name}`),
    nodeCommand,
    ...(tamper ? { tamper } : {}),
  });
  sshds[name] = sshd;
  return sshd;
}

/** The system ssh to `node` offering `prepared`'s certificate (lab/sshd.ts sshWithAgent). */
function sshWith(
  prepared: Pick<PreparedSsh, 'knownHostsFile' | 'signer' | 'certificate' | 'login'>,
  node: { name: string; addr: string },
  command: string,
): Promise<CliResult> {
  return sshWithAgent(work, prepared, node, command);
}

/** A per-session certificate for login@node, earned in this process with the lab key's touch. */
async function perSession(node: string, login = 'jerry'): Promise<PreparedSsh> {
  process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
  const said: string[] = [];
  const calls: string[] = [];
  const prepared = await prepareSsh(
    new ProfileStore(home()),
    { node, login },
    {
      mfa: {
        otpCode: () => Promise.reject(new Error('no OTP here')),
        securityKey: {
          tap: (m) => said.push(m),
          pin: () => Promise.reject(new Error('no PIN')),
          newPin: () => Promise.reject(new Error('no PIN')),
          notice: () => {},
        },
      },
    },
    (method) => calls.push(method),
  );
  expect(prepared.perSession).toBe(true);
  expect(said).toContain('Tap any security key');
  // Two round trips to keyport-auth per per-session connection (the node's single-use check is the third).
  expect(calls).toEqual(['nodes.isMfaRequired', 'nodes.generateSessionCertificate']);
  return prepared;
}

function sessionRows(): { serial: string; node: string; connection: string | null }[] {
  const db = openClusterDb(cluster);
  try {
    return db
      .prepare('SELECT serial, node, connection FROM session_certificates ORDER BY created_ms')
      .all() as never;
  } finally {
    db.close();
  }
}

/** The connections keyport-auth allowed for keyport-node, as audited: node and connection of each. */
function allowedConnections(): { node: string; connection: string }[] {
  const db = openClusterDb(cluster);
  try {
    const rows = db
      .prepare(
        "SELECT fields_json FROM audit_events WHERE type = 'session.connect' AND success = 1 ORDER BY id",
      )
      .all() as { fields_json: string }[];
    return rows.map((row) => JSON.parse(row.fields_json) as { node: string; connection: string });
  } finally {
    db.close();
  }
}

/** The connections keyport-auth refused for keyport-node, as audited. */
function refusals(): string[] {
  const db = openClusterDb(cluster);
  try {
    const rows = db
      .prepare("SELECT message FROM audit_events WHERE type = 'session.connect' AND success = 0 ORDER BY id")
      .all() as { message: string }[];
    return rows.map((row) => row.message);
  } finally {
    db.close();
  }
}

/** The fields of every refused per-session certificate call, as audited. */
function refusedCertificateFields(): Record<string, unknown>[] {
  const db = openClusterDb(cluster);
  try {
    const rows = db
      .prepare(
        "SELECT fields_json FROM audit_events WHERE type = 'session.certificate' AND success = 0 ORDER BY id",
      )
      .all() as { fields_json: string }[];
    return rows.map((row) => JSON.parse(row.fields_json) as Record<string, unknown>);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-ssh-'));
  clock = createLabClock();
  ensureLabAccounts(['jerry']);
  nodeCommand = await labNodeCommand(clock.env);
  cluster = await startLabCluster({
    clusterName: 'nodes',
    env: clock.env,
    configYaml: [
      'auth_service:',
      '  public_addr: localhost:0',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn, otp]',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
  });
  key = await startSoftKey({
    socketPath: join(work, 'key.sock'),
    statePath: join(work, 'key.json'),
    touch: 'auto:400',
  });
  await writeFile(join(work, 'roles.yaml'), ROLES_YAML);
  const created = await runAdmin(cluster, ['create', '-f', join(work, 'roles.yaml')]);
  expect(created.code, created.stderr).toBe(0);
  // "Olga then assigns both roles to all engineers, including Jerry."
  const added = await runAdmin(cluster, ['users', 'add', 'jerry', '--roles', 'access-dev,access-prod']);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
  const signup = await cli(
    [
      'signup',
      '--cluster',
      cluster.address,
      '--token',
      token,
      '--ca-pin',
      cluster.caPin,
      '--device',
      'webauthn',
      '--device-name',
      'key',
    ],
    [password],
  );
  expect(signup.code, signup.stderr).toBe(0);
  const login = await cli(
    [
      'login',
      '--cluster',
      cluster.address,
      '--user',
      'jerry',
      '--ca-pin',
      cluster.caPin,
      '--password-stdin',
      '--keystore',
      'file',
      '--mfa',
      'key',
    ],
    [password],
  );
  expect(login.code, login.stderr).toBe(0);
  await addNode('dev1', 'env=dev');
  await addNode('prod3', 'env=prod');
}, 180_000);

afterAll(async () => {
  for (const sshd of Object.values(sshds)) await sshd.stop();
  await key?.stop();
  await cluster?.stop();
  await nodeCommand?.remove();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('nodes and keyport ssh (the seed’s Jerry and Olga)', () => {
  it('keyport admin get nodes lists the node resources; keyport ls lists what Jerry may reach', async () => {
    const got = await runAdmin(cluster, ['get', 'nodes']);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/kind: node[\s\S]*sub_kind: openssh/);
    expect(got.stdout).toContain(`addr: ${sshds.dev1!.addr}`);
    const listed = await cli(['ls']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^dev1\s+127\.0\.0\.1:\d+\s+env=dev\s+jerry$/m);
    expect(listed.stdout).toMatch(/^prod3\s+127\.0\.0\.1:\d+\s+env=prod\s+jerry$/m);
  });

  it('When Jerry logs into node dev1 as jerry, nothing special happens', async () => {
    const audited = allowedConnections().length;
    const result = await cli(['ssh', 'jerry@dev1', 'echo', 'hello from dev1']);
    expect(result.stderr).not.toMatch(/Tap/);
    expect(result.code, result.stderr + (await sshds.dev1!.log())).toBe(0);
    expect(result.stdout).toBe('hello from dev1\n');
    // keyport's known_hosts holds the cluster's host CA line.
    const knownHosts = await readFile(join(home(), 'known_hosts'), 'utf8');
    expect(knownHosts).toMatch(/^@cert-authority \* ssh-ed25519 \S+ keyport-cluster=/m);
    // sshd ran keyport-node twice for this connection; it is audited once.
    expect(allowedConnections().slice(audited)).toEqual([
      expect.objectContaining({ node: 'dev1', connection: expect.stringMatching(/^\d+:\d+$/) }),
    ]);
  });

  it('When Jerry logs into prod3 as jerry, he gets prompted for an MFA check: Tap any security key', async () => {
    const before = sessionRows().length;
    const audited = allowedConnections().length;
    const result = await cli(['ssh', 'jerry@prod3', 'echo', 'hello from prod3']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Tap any security key');
    expect(result.stdout).toBe('hello from prod3\n');
    // One single-use certificate, spent by that one connection.
    const rows = sessionRows();
    expect(rows.length).toBe(before + 1);
    expect(rows.at(-1)).toMatchObject({ node: 'prod3', connection: expect.stringMatching(/^\d+:\d+$/) });
    // Both of sshd's calls passed; the connection is audited once.
    expect(allowedConnections().slice(audited)).toEqual([
      expect.objectContaining({ node: 'prod3', connection: rows.at(-1)?.connection }),
    ]);
  });

  it('passes the remote command’s exit status through', async () => {
    const result = await cli(['ssh', 'jerry@dev1', 'exit 7']);
    expect(result.code).toBe(7);
  });

  it('refuses a login no role allows, before ssh runs, and stores nothing', async () => {
    const before = sessionRows().length;
    const result = await cli(['ssh', 'root@dev1', 'true']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/Access denied: jerry may not log in to node "dev1" as "root"/);
    const unknown = await cli(['ssh', 'jerry@nowhere', 'true']);
    expect(unknown.code).toBe(9);
    expect(unknown.stderr).toMatch(/Node "nowhere" is not registered/);
    expect(sessionRows().length).toBe(before);
  });

  it('the node refuses Jerry’s normal session certificate where per-session MFA applies', async () => {
    const profile = (await new ProfileStore(home()).getProfile())!;
    const prepared = await perSession('prod3');
    await prepared.close();
    // The session's own certificate, offered to prod3 directly: keyport-node says no.
    const result = await sshWith(
      { ...prepared, certificate: profile.sshCertificate },
      { name: 'prod3', addr: sshds.prod3!.addr },
      'echo should-not-run',
    );
    expect(result.code).toBe(255);
    expect(result.stdout).toBe('');
    // …and dev1 takes it (no per-session MFA there).
    const dev = await sshWith(
      { ...prepared, login: 'jerry', certificate: profile.sshCertificate },
      { name: 'dev1', addr: sshds.dev1!.addr },
      'echo dev-ok',
    );
    expect(dev.code, dev.stderr).toBe(0);
    expect(dev.stdout).toBe('dev-ok\n');
  });

  it('a single-use certificate works once: refused on its second connection and on another node', async () => {
    const prepared = await perSession('prod3');
    try {
      const first = await sshWith(prepared, { name: 'prod3', addr: sshds.prod3!.addr }, 'echo first');
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toBe('first\n');
      const second = await sshWith(prepared, { name: 'prod3', addr: sshds.prod3!.addr }, 'echo second');
      expect(second.code).toBe(255);
      expect(second.stdout).toBe('');
      // keyport-node asked, and keyport-auth refused it, audited.
      expect(refusals()).toContainEqual(
        expect.stringMatching(/^jerry@prod3 refused: This single-use certificate was already used/),
      );
    } finally {
      await prepared.close();
    }
    const other = await perSession('prod3');
    try {
      // Scoped to prod3: dev1 refuses it, and it stays unspent for prod3.
      const elsewhere = await sshWith(other, { name: 'dev1', addr: sshds.dev1!.addr }, 'echo elsewhere');
      expect(elsewhere.code).toBe(255);
      expect(refusals()).toContainEqual(
        expect.stringMatching(/^jerry@dev1 refused: This certificate is for node "prod3"/),
      );
      expect(sessionRows().at(-1)?.connection).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('refuses a node whose host certificate is not from the cluster (the client checks the host CA)', async () => {
    await addNode('rogue', 'env=dev', async (dir) => {
      // Another CA signs the node's host key: a node that is not what the cluster registered.
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'rogue-ca')]);
      execFileSync('ssh-keygen', [
        '-q',
        '-s',
        join(dir, 'rogue-ca'),
        '-I',
        'rogue',
        '-h',
        '-n',
        'rogue,127.0.0.1',
        join(dir, 'ssh_host_ecdsa_key.pub'),
      ]);
    });
    const result = await cli(['ssh', 'jerry@rogue', 'echo', 'should-not-run']);
    expect(result.code).toBe(255);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Host key verification failed/);
  });

  it('keyport ssh-config: plain `ssh NODE` goes through keyport, with the touch where it applies', async () => {
    const printed = await cli(['ssh-config']);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/^Host dev1 prod3( rogue)?$/m);
    expect(printed.stdout).toMatch(/ProxyCommand .* ssh-proxy --agent-socket \S+%r@%n\.sock %r %n$/m);
    const config = join(work, 'ssh_config');
    await writeFile(config, printed.stdout);
    const plainSsh = (destination: string, command: string) =>
      new Promise<CliResult>((resolve, reject) => {
        const child = spawn(
          'ssh',
          ['-F', config, '-o', 'BatchMode=yes', '-l', 'jerry', destination, command],
          {
            env: { ...process.env, KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...clock.env },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.once('error', reject);
        child.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const dev = await plainSsh('dev1', 'echo plain ssh to dev1');
    expect(dev.code, dev.stderr).toBe(0);
    expect(dev.stdout).toBe('plain ssh to dev1\n');
    const prod = await plainSsh('prod3', 'echo plain ssh to prod3');
    expect(prod.code, prod.stderr).toBe(0);
    expect(prod.stderr).toContain('Tap any security key');
    expect(prod.stdout).toBe('plain ssh to prod3\n');
  });

  it('per-session MFA cluster-wide: Jerry is prompted even when logging into dev1', async () => {
    const cap = (requireSessionMfa: boolean) =>
      [
        'kind: cluster_auth_preference',
        'metadata:',
        '  name: cluster-auth-preference',
        'spec:',
        '  type: local',
        '  second_factors: [webauthn, otp]',
        '  webauthn:',
        '    rp_id: localhost',
        `  require_session_mfa: ${requireSessionMfa}`,
        'version: v2',
        '',
      ].join('\n');
    await writeFile(join(work, 'cap.yaml'), cap(true));
    expect((await runAdmin(cluster, ['create', '-f', join(work, 'cap.yaml')])).code).toBe(0);
    try {
      const result = await cli(['ssh', 'jerry@dev1', 'echo', 'mfa on dev1']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('Tap any security key');
      expect(result.stdout).toBe('mfa on dev1\n');
      // …and the session's own certificate no longer opens dev1.
      const profile = (await new ProfileStore(home()).getProfile())!;
      const prepared = await perSession('dev1');
      await prepared.close();
      const direct = await sshWith(
        { ...prepared, certificate: profile.sshCertificate },
        { name: 'dev1', addr: sshds.dev1!.addr },
        'echo should-not-run',
      );
      expect(direct.code).toBe(255);
      expect(refusals()).toContainEqual(
        expect.stringMatching(/^jerry@dev1 refused: Node "dev1" requires per-session MFA/),
      );
    } finally {
      await writeFile(join(work, 'cap.yaml'), cap(false));
      expect((await runAdmin(cluster, ['create', '-f', join(work, 'cap.yaml')])).code).toBe(0);
    }
  });

  it('an expired per-session certificate is refused, and not spent', async () => {
    const prepared = await perSession('prod3');
    try {
      clock.advance(2 * 60_000);
      const result = await sshWith(prepared, { name: 'prod3', addr: sshds.prod3!.addr }, 'echo late');
      expect(result.code).toBe(255);
      expect(result.stdout).toBe('');
      expect(sessionRows().at(-1)?.connection).toBeNull();
    } finally {
      await prepared.close();
    }
  });
});

describe('the per-session challenge is bound to its node and login, and single use', () => {
  it('refuses an answer for prod3 offered for dev1 or another login, a reused answer and no answer, issuing nothing', async () => {
    process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
    const profiles = new ProfileStore(home());
    const profile = (await profiles.getProfile())!;
    const trusted = (await profiles.getTrustedCluster(parseClusterAddress(profile.address)))!;
    const api = await connectAsProfile(profiles, profile);
    const touch = async () => {
      const check = await api.nodes.isMfaRequired({ node: 'prod3', login: 'jerry' });
      expect(check.required).toBe(true);
      return answerChallenge(check.challenge!, {
        origin: webauthnOrigin(trusted),
        prompts: {
          otpCode: () => Promise.reject(new Error('no OTP')),
          securityKey: {
            tap: () => {},
            pin: () => Promise.reject(new Error('no PIN')),
            newPin: () => Promise.reject(new Error('no PIN')),
            notice: () => {},
          },
        },
        preference: 'key',
      });
    };
    const refusal = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (error: unknown) => error as KeyportError,
      );
    try {
      const before = sessionRows().length;
      const refusedBefore = refusedCertificateFields().length;
      const forProd3 = await touch();
      expect(
        await refusal(
          api.nodes.generateSessionCertificate({ node: 'dev1', login: 'jerry', mfaResponse: forProd3 }),
        ),
      ).toMatchObject({
        code: 'MFA_FAILED',
        message: expect.stringContaining('made for jerry@prod3, not jerry@dev1'),
      });
      // Spent by that refusal: the same answer, now for its own node, is refused too.
      expect(
        await refusal(
          api.nodes.generateSessionCertificate({ node: 'prod3', login: 'jerry', mfaResponse: forProd3 }),
        ),
      ).toMatchObject({
        code: 'EXPIRED',
      });
      const another = await touch();
      expect(
        await refusal(
          api.nodes.generateSessionCertificate({ node: 'prod3', login: 'root', mfaResponse: another }),
        ),
      ).toMatchObject({
        code: 'MFA_FAILED',
      });
      expect(
        await refusal(api.nodes.generateSessionCertificate({ node: 'prod3', login: 'jerry' })),
      ).toMatchObject({
        code: 'MFA_REQUIRED',
      });
      expect(sessionRows().length).toBe(before);
      // Each refusal is audited with what was asked and why, never with the MFA answer offered.
      expect(refusedCertificateFields().slice(refusedBefore)).toEqual([
        { node: 'dev1', login: 'jerry', code: 'MFA_FAILED' },
        { node: 'prod3', login: 'jerry', code: 'EXPIRED' },
        { node: 'prod3', login: 'root', code: 'MFA_FAILED' },
        { node: 'prod3', login: 'jerry', code: 'MFA_REQUIRED' },
      ]);
    } finally {
      api.close();
    }
  });
});

describe('node registration and the node service’s callers', () => {
  const nodeRow = (name: string) => {
    const db = openClusterDb(cluster);
    try {
      return db.prepare('SELECT doc_json, identity_serial FROM nodes WHERE name = ?').get(name) as
        { doc_json: string; identity_serial: string } | undefined;
    } finally {
      db.close();
    }
  };

  it('refuses a second registration without --force and bad input, changing nothing', async () => {
    const before = nodeRow('dev1');
    const again = await runAdmin(cluster, [
      'nodes',
      'add',
      '--name',
      'dev1',
      '--addr',
      '10.9.9.9:22',
      '--out',
      join(work, 'dup'),
    ]);
    expect(again.code).toBe(9);
    expect(again.stderr).toMatch(/Node "dev1" already exists; use --force to replace it/);
    expect(nodeRow('dev1')).toEqual(before);
    const bad = await runAdmin(cluster, [
      'nodes',
      'add',
      '--name',
      'bad',
      '--addr',
      'no-port',
      '--out',
      join(work, 'bad'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid address "no-port"; expected HOST:PORT/);
    const badLabel = await runAdmin(cluster, [
      'nodes',
      'add',
      '--name',
      'bad',
      '--addr',
      '10.0.0.1:22',
      '--labels',
      'env',
      '--out',
      join(work, 'bad'),
    ]);
    expect(badLabel.code).toBe(2);
    expect(nodeRow('bad')).toBeUndefined();
  });

  it('a replaced node identity, and a user’s certificate, cannot ask the node service', async () => {
    // rogue's first registration wrote an identity that its second one replaced.
    const config = JSON.parse(await readFile(join(work, 'node-rogue', 'node.json'), 'utf8')) as {
      auth_addr: string;
      tls_ca_file: string;
      identity_cert_file: string;
      identity_key_file: string;
    };
    const [ca, cert, keyPem] = await Promise.all([
      readFile(config.tls_ca_file),
      readFile(config.identity_cert_file),
      readFile(config.identity_key_file),
    ]);
    const ask = (client: NodeServiceClient) =>
      new Promise<KeyportError>((resolve) =>
        client.authorizeConnection(
          { certificateType: 'x', certificate: 'y', login: 'jerry', connection: '1:1' },
          (error) => resolve(fromServiceError(error!)),
        ),
      );
    const stale = new NodeServiceClient(config.auth_addr, credentials.createSsl(ca, keyPem, cert));
    expect(await ask(stale)).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringMatching(/identity of node "rogue" is no longer valid/),
    });
    stale.close();
    const admin = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
      keyPem: string;
      certPem: string;
    };
    const user = new NodeServiceClient(
      config.auth_addr,
      credentials.createSsl(ca, Buffer.from(admin.keyPem), Buffer.from(admin.certPem)),
    );
    expect(await ask(user)).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/Only a node's own identity/),
    });
    user.close();
  });
});
