// Keyport Connect's terminals through the handler table, against real processes: keyport-auth with
// WebAuthn, the lab security key, real sshd nodes on 127.0.0.1 whose AuthorizedPrincipalsCommand is
// keyport-node, and the system ssh in a pty (node-pty). The roles are the seed's (per-session MFA on
// env=prod). What the renderer would see is only what the events and results carry: terminal bytes and
// reasons, never a key, a certificate or a path.
import { readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { prepareSsh } from '../../client/ssh/session';
import type { PreparedSsh } from '../../client/ssh/session';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { connectAsAdmin, openClusterDb, runAdmin, runKeyport, startLabCluster } from '../../lab/cluster';
import type { CliResult, LabCluster } from '../../lab/cluster';
import { startSoftKey } from '../../lab/security-key/soft-key';
import type { SoftKey } from '../../lab/security-key/soft-key';
import {
  ensureLabAccounts,
  labNodeCommand,
  rogueHostCertificate,
  sshWithAgent,
  startLabNode,
} from '../../lab/sshd';
import type { LabSshd, NodeCommand } from '../../lab/sshd';
import type { Prompt, TerminalEnded } from '../../preload/contract';
import { createBackend } from './backend';
import type { Backend } from './backend';

const ROLES_YAML = `kind: role
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
kind: role
version: v7
metadata:
  name: access-prod
spec:
  options:
    require_session_mfa: true
  allow:
    node_labels:
      env: prod
    logins:
      - jerry
`;
const PASSWORD = 'jerry-password-123';
const SIZE = { cols: 100, rows: 30 };

let work: string;
let clock: LabClock;
let cluster: LabCluster;
let key: SoftKey;
let nodeCommand: NodeCommand;
let backend: Backend;
const sshds: LabSshd[] = [];
const home = () => join(work, 'home');
/** Every ceremony's certificate, as prepareSsh gave it to the backend (never to the renderer). */
const prepared: PreparedSsh[] = [];
/** Everything the renderer would have received: results, prompts, terminal bytes, endings. */
const seen: unknown[] = [];
const output = new Map<string, string>();
const endings = new Map<string, TerminalEnded>();
const prompts: Prompt[] = [];

function cli(args: string[], input: string[] = []): Promise<CliResult> {
  return runKeyport(args, {
    home: home(),
    input,
    env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...clock.env },
    timeoutMs: 60_000,
  });
}

/** Waits for a condition, bounded generously for a loaded machine. */
async function until<T>(what: string, check: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function open(node: string, login = 'jerry') {
  const result = await backend.handlers['terminals.open']({ node, login, ...SIZE });
  seen.push(result);
  return result;
}

async function openOk(node: string): Promise<string> {
  const result = await open(node);
  if (!result.ok) throw new Error(`${node}: ${result.error.code} ${result.error.message}`);
  return result.value.id;
}

/** Types a line and waits for `expected` in the terminal's output after it. */
async function run(id: string, line: string, expected: string | RegExp): Promise<string> {
  const from = (output.get(id) ?? '').length;
  expect(await backend.handlers['terminals.input']({ id, data: `${line}\r` })).toEqual({
    ok: true,
    value: null,
  });
  return until(`${String(expected)} on ${id}`, () => {
    const text = (output.get(id) ?? '').slice(from);
    return (typeof expected === 'string' ? text.includes(expected) : expected.test(text)) && text;
  });
}

const ended = (id: string) => until(`the end of ${id}`, () => endings.get(id));

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

const terminalFolders = async () => (await readdir(home())).filter((name) => name.startsWith('terminal-'));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-terminals-'));
  clock = createLabClock();
  ensureLabAccounts(['jerry']);
  nodeCommand = await labNodeCommand(clock.env);
  cluster = await startLabCluster({
    clusterName: 'terminals',
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
    touch: 'auto:100',
  });
  // The backend's ceremonies find the lab key as the app does (client/webauthn/keys.ts).
  process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
  await writeFile(join(work, 'roles.yaml'), ROLES_YAML);
  expect((await runAdmin(cluster, ['create', '-f', join(work, 'roles.yaml')])).code).toBe(0);
  const added = await runAdmin(cluster, ['users', 'add', 'jerry', '--roles', 'access-dev,access-prod']);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
  const common = ['--cluster', cluster.address, '--ca-pin', cluster.caPin];
  const signup = await cli(
    ['signup', ...common, '--token', token, '--device', 'webauthn', '--device-name', 'key'],
    [PASSWORD],
  );
  expect(signup.code, signup.stderr).toBe(0);
  const login = await cli(
    ['login', ...common, '--user', 'jerry', '--password-stdin', '--keystore', 'file', '--mfa', 'key'],
    [PASSWORD],
  );
  expect(login.code, login.stderr).toBe(0);
  const node = (name: string, labels: string, tamper?: (dir: string) => Promise<void>) =>
    startLabNode(cluster, {
      name,
      labels,
      dir: join(work, `node-${name}`),
      nodeCommand,
      ...(tamper ? { tamper } : {}),
    }).then((sshd) => void sshds.push(sshd));
  await node('dev1', 'env=dev');
  await node('prod3', 'env=prod');
  await node('rogue', 'env=dev', rogueHostCertificate('rogue'));
  // A registered node whose sshd is not running: nothing listens on its port.
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.admin.createResources({
      documentsJson: [
        JSON.stringify({
          kind: 'node',
          version: 'v2',
          sub_kind: 'openssh',
          metadata: { name: 'down', labels: { env: 'dev' } },
          spec: { addr: `127.0.0.1:${await freePort()}` },
        }),
      ],
      force: false,
    });
  } finally {
    admin.close();
  }

  backend = createBackend({
    profiles: new ProfileStore(home()),
    keystoreKind: 'file',
    env: { ...process.env, ...clock.env },
    watchProfiles: false,
    terminals: {
      prepare: async (...args) => {
        const ready = await prepareSsh(...args);
        prepared.push(ready);
        return ready;
      },
    },
  });
  backend.on('onTerminalData', (event) => {
    seen.push(event);
    output.set(event.id, (output.get(event.id) ?? '') + event.data);
  });
  backend.on('onTerminalEnded', (event) => {
    seen.push(event);
    endings.set(event.id, event);
  });
  backend.on('onPrompt', (prompt) => {
    seen.push(prompt);
    prompts.push(prompt);
  });
}, 240_000);

afterAll(async () => {
  await backend?.close();
  for (const sshd of sshds) await sshd.stop();
  await key?.stop();
  await cluster?.stop();
  await nodeCommand?.remove();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('terminal sessions in the backend (real sshd, the system ssh in a pty)', () => {
  it('opens a shell on dev1 without a touch, runs echo, follows a resize, and ends with the exit code', async () => {
    const id = await openOk('dev1');
    expect(prompts.filter((p) => p.kind === 'tapKey')).toEqual([]);
    expect(await terminalFolders()).toHaveLength(1);
    await run(id, 'echo hello-$((6*7))', 'hello-42');
    await run(id, 'stty size', '30 100');
    expect(await backend.handlers['terminals.resize']({ id, cols: 120, rows: 40 })).toEqual({
      ok: true,
      value: null,
    });
    await run(id, 'stty size', '40 120');
    await run(id, 'exit 3', /./);
    expect(await ended(id)).toEqual({
      id,
      reason: 'exited',
      exitCode: 3,
      message: 'The session on dev1 ended with exit code 3.',
    });
    // The pty, the agent and the session's folder are gone; the id answers NOT_FOUND.
    expect(await terminalFolders()).toEqual([]);
    expect(await backend.handlers['terminals.input']({ id, data: 'ls\r' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND', details: { fieldPath: 'id' } },
    });
  });

  it('per-session MFA on prod3: the login’s touch prompt names login@node; each tab gets its own single-use certificate', async () => {
    const rows = sessionRows().length;
    const first = await openOk('prod3');
    const second = await openOk('prod3');
    expect(prompts.filter((p) => p.kind === 'tapKey').map((p) => p.kind === 'tapKey' && p.message)).toEqual([
      'Tap your security key to connect to jerry@prod3',
      'Tap your security key to connect to jerry@prod3',
    ]);
    await run(first, 'echo first-$((1+1))', 'first-2');
    await run(second, 'echo second-$((1+2))', 'second-3');
    // Two certificates, each spent by its own connection.
    const spent = sessionRows().slice(rows);
    expect(spent).toHaveLength(2);
    expect(new Set(spent.map((row) => row.serial)).size).toBe(2);
    expect(spent.every((row) => row.node === 'prod3' && /^\d+:\d+$/.test(row.connection ?? ''))).toBe(true);
    expect(spent[0]!.connection).not.toBe(spent[1]!.connection);
    // The first tab's certificate on a connection of its own: refused, it was spent by the tab.
    const again = prepared.at(-2)!;
    const reused = await sshWithAgent(
      work,
      { ...again, login: 'jerry' },
      { name: 'prod3', addr: sshds[1]!.addr },
      'echo should-not-run',
    );
    expect(reused.code).toBe(255);
    expect(reused.stdout).toBe('');
    for (const id of [first, second]) {
      expect(await backend.handlers['terminals.close']({ id })).toEqual({ ok: true, value: null });
      expect(endings.get(id)).toEqual({ id, reason: 'closed', message: 'You closed this session.' });
    }
    expect(await terminalFolders()).toEqual([]);
  });

  it('refuses a login no role allows before ssh runs, typed, and stores nothing', async () => {
    const rows = sessionRows().length;
    const result = await open('dev1', 'root');
    expect(result).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
    if (!result.ok) expect(result.error.message).toMatch(/may not log in to node "dev1" as "root"/);
    expect(sessionRows()).toHaveLength(rows);
    expect(await terminalFolders()).toEqual([]);
    expect(await open('nowhere')).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });

  it('a node whose host certificate is not from the cluster: ssh refuses it and the tab says why', async () => {
    const id = await openOk('rogue');
    const ending = await ended(id);
    expect(ending).toMatchObject({ id, reason: 'hostNotTrusted', exitCode: 255 });
    expect(ending.message).toMatch(/did not show a host certificate from .* host CA/);
    // ssh's own words went to its log, not into the terminal.
    expect(output.get(id) ?? '').not.toMatch(/Host key verification failed/);
    expect(await terminalFolders()).toEqual([]);
  });

  it('a server that is down: the tab says so and what to do', async () => {
    const id = await openOk('down');
    const ending = await ended(id);
    expect(ending).toMatchObject({ id, reason: 'serverDown', exitCode: 255 });
    expect(ending.message).toMatch(/^down \(127\.0\.0\.1:\d+\) is not answering: the server is down/);
  });

  it('bounds the open terminals', async () => {
    const bounded = createBackend({
      profiles: new ProfileStore(home()),
      keystoreKind: 'file',
      env: { ...process.env, ...clock.env },
      watchProfiles: false,
      terminals: { max: 1 },
    });
    try {
      const one = await bounded.handlers['terminals.open']({ node: 'dev1', login: 'jerry', ...SIZE });
      expect(one.ok).toBe(true);
      const two = await bounded.handlers['terminals.open']({ node: 'dev1', login: 'jerry', ...SIZE });
      expect(two).toMatchObject({ ok: false, error: { code: 'RESOURCE_EXHAUSTED' } });
    } finally {
      // App quit ends what is still open.
      await bounded.close();
    }
    expect(await terminalFolders()).toEqual([]);
  });

  it('sign-out closes the cluster’s terminals', async () => {
    const id = await openOk('dev1');
    await run(id, 'echo still-here', 'still-here');
    const signedOut = await backend.handlers['auth.logout']();
    seen.push(signedOut);
    expect(signedOut.ok).toBe(true);
    expect(await ended(id)).toMatchObject({ id, reason: 'signedOut' });
    expect(await terminalFolders()).toEqual([]);
  });

  it('a `keyport logout` in a terminal closes the app’s terminals of that cluster too (the profile watcher)', async () => {
    const login = await cli(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'jerry',
        '--password-stdin',
        '--keystore',
        'file',
        '--mfa',
        'key',
      ],
      [PASSWORD],
    );
    expect(login.code, login.stderr).toBe(0);
    const watching = createBackend({
      profiles: new ProfileStore(home()),
      keystoreKind: 'file',
      env: { ...process.env, ...clock.env },
    });
    const ends: TerminalEnded[] = [];
    watching.on('onTerminalEnded', (event) => ends.push(event));
    try {
      await watching.ready;
      const opened = await watching.handlers['terminals.open']({ node: 'dev1', login: 'jerry', ...SIZE });
      seen.push(opened);
      expect(opened.ok).toBe(true);
      expect((await cli(['logout'])).code).toBe(0);
      expect(await until('the watcher’s sign-out', () => ends[0])).toMatchObject({ reason: 'signedOut' });
      expect(await terminalFolders()).toEqual([]);
    } finally {
      await watching.close();
    }
  });

  it('no result, prompt or event carried a key, a certificate or a local path (invariant 1)', async () => {
    const everything = JSON.stringify(seen);
    expect(everything.length).toBeGreaterThan(1000);
    expect(prepared.length).toBeGreaterThanOrEqual(4);
    for (const secret of [
      PASSWORD,
      'PRIVATE KEY',
      'BEGIN CERTIFICATE',
      '-cert-v01@openssh.com',
      home(),
      'agent.sock',
      'known_hosts',
      ...prepared.map((p) => p.certificate.split(' ')[1]!),
      ...prepared.map((p) => p.knownHostsFile),
    ]) {
      expect(everything).not.toContain(secret);
    }
  });
});
