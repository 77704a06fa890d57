// MFA for admin actions (seed "Harden your Cluster Against IdP Compromises"), end to end: a real
// keyport-auth where WebAuthn is the only second factor, the lab's soft security key (it counts touches),
// the keyport CLI as a person runs it, and the same writes sent in process to see each refusal up close.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminActionOf } from '../proto/admin-mfa';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import { connectCluster } from '../client/api';
import type { AdminServiceName, ClusterApi } from '../client/api';
import { adminActionFor, authorizeAdminActions } from '../client/ceremonies/admin-action';
import { answerChallenge } from '../client/ceremonies/mfa';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import type { callKinds } from '../client/replicas';
import { connectAsProfile, webauthnOrigin } from '../client/session';
import { openKeys } from '../client/webauthn';
import { formatSshPublicKey, sshPublicKeyParts } from '../client/keystore/session-key';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectAsAdmin, openClusterDb, runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

let clock: LabClock;
let cluster: LabCluster;
let work: string;
let key: SoftKey;
let api: ClusterApi;
let origin: string;
let touches = 0;
const home = () => join(work, 'home');
// A node's public keys, as `keyport admin nodes add` makes them (its registration is an admin write).
const nodeHostKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const NODE_HOST_KEY = formatSshPublicKey(sshPublicKeyParts(nodeHostKey));
const NODE_IDENTITY_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();
const password = 'ada-password-123';

const capYaml = (factors: string) =>
  [
    'kind: cluster_auth_preference',
    'version: v2',
    'metadata:',
    '  name: cluster-auth-preference',
    'spec:',
    '  type: local',
    `  second_factors: ${factors}`,
    '  webauthn:',
    '    rp_id: localhost',
    '',
  ].join('\n');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-admin-mfa-'));
  clock = createLabClock();
  // This process's client reads the same clock (a proof of possession's time is checked against the service's).
  Object.assign(process.env, clock.env);
  cluster = await startLabCluster({
    clusterName: 'admin-mfa',
    env: clock.env,
    configYaml: [
      'auth_service:',
      '  public_addr: localhost:0',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn]',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
  });
  key = await startSoftKey({
    socketPath: join(work, 'key.sock'),
    statePath: join(work, 'key.json'),
    touch: 'auto:20',
  });
  key.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
  // The super-admin adds ada (no touch: exempt); ada signs up and logs in with the key.
  const added = await runAdmin(cluster, ['users', 'add', 'ada', '--roles', 'editor'], { env: clock.env });
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
  expect(token, added.stderr).not.toBe('');
  const signup = await cli(
    [
      ...['signup', '--cluster', cluster.address, '--token', token, '--ca-pin', cluster.caPin],
      ...['--device', 'webauthn', '--device-name', 'ada-key'],
    ],
    [password],
  );
  expect(signup.code, signup.stderr).toBe(0);
  const login = await cli(
    [
      ...['login', '--cluster', cluster.address, '--user', 'ada', '--ca-pin', cluster.caPin],
      ...['--password-stdin', '--keystore', 'file', '--mfa', 'key'],
    ],
    [password],
  );
  expect(login.code, login.stderr).toBe(0);
  const profiles = new ProfileStore(home());
  const profile = (await profiles.getProfile())!;
  api = await connectAsProfile(profiles, profile);
  origin = webauthnOrigin((await profiles.getTrustedCluster(parseClusterAddress(profile.address)))!);
}, 300_000);

afterAll(async () => {
  for (const name of Object.keys(clock?.env ?? {})) delete process.env[name];
  api?.close();
  await key?.stop();
  await cluster?.stop();
  clock?.dispose();
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], input: string[] = [], env: Record<string, string> = {}): Promise<CliResult> {
  return runKeyport(args, {
    home: home(),
    input,
    env: { ...clock.env, KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...env },
    timeoutMs: 60_000,
  });
}

/** Runs `keyport admin ARGS` as ada and returns the result and the touches it took. */
async function adminAsAda(args: string[], env: Record<string, string> = {}) {
  const before = touches;
  const result = await cli(['admin', ...args], [], env);
  expect(result.code, `${args.join(' ')}\n${result.stdout}${result.stderr}`).toBe(0);
  return { ...result, touches: touches - before };
}

/** The stored state an admin write changes (not the audit log, challenges or key counters). */
function storedState(): string {
  const db = openClusterDb(cluster);
  try {
    return JSON.stringify(
      [
        'users',
        'roles',
        'cluster_config',
        'signup_tokens',
        'trusted_devices',
        'device_enroll_tokens',
        'nodes',
        'oidc_connectors',
      ].map((table) => db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()),
    );
  } finally {
    db.close();
  }
}

/** The lab key's answer to `challenge`, in this process. */
function answer(challenge: MFAAuthenticateChallenge): Promise<MFAAuthenticateResponse> {
  return answerChallenge(challenge, {
    origin,
    preference: 'key',
    keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
    prompts: {
      otpCode: () => Promise.reject(new Error('no OTP here')),
      securityKey: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
    },
  });
}

/** The admin API for `actions`, answered by the lab key in this process. */
function authorized(actions: Parameters<typeof authorizeAdminActions>[1]) {
  return authorizeAdminActions(api, actions, {
    origin,
    keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
    prompts: {
      otpCode: () => Promise.reject(new Error('no OTP here')),
      securityKey: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
    },
  });
}

async function auditReasons(): Promise<string[]> {
  const admin = await connectAsAdmin(cluster);
  try {
    const { events } = await admin.admin.listAuditEvents({
      sinceMs: 0,
      type: 'mfa.admin_action',
      limit: 1000,
    });
    return events.map((event) => {
      expect(event.success).toBe(false);
      expect(['ada', 'bob']).toContain(event.actor);
      return (JSON.parse(event.fieldsJson) as { reason: string }).reason;
    });
  } finally {
    admin.close();
  }
}

const roleJson = (name: string, login = name) =>
  JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec: { allow: { logins: [login] } } });

const oidcJson = (name: string) =>
  JSON.stringify({
    kind: 'oidc',
    version: 'v3',
    metadata: { name },
    spec: {
      issuer_url: 'https://idp.example.com',
      client_id: 'keyport',
      client_secret: 'lab-secret',
      redirect_url: 'https://keyport.example.com/v1/webapi/oidc/callback',
      claims_to_roles: [{ claim: 'groups', value: 'admins', roles: ['editor'] }],
    },
  });

// Every admin write there is (callKinds' writes of every service but sign-in and the person's own account),
// each with a request that reaches its authorisation. A new admin write, or a new service with writes, does
// not compile until it is listed here, and so is tested.
type WritesOf<S extends AdminServiceName> = {
  [M in keyof (typeof callKinds)[S]]: (typeof callKinds)[S][M] extends 'write' ? M : never;
}[keyof (typeof callKinds)[S]];
type RequestOf<S extends AdminServiceName, M> = M extends keyof ClusterApi[S]
  ? ClusterApi[S][M] extends (request: infer Req) => Promise<unknown>
    ? Req
    : never
  : never;
const everyWrite: { [S in AdminServiceName]: { [M in WritesOf<S>]: RequestOf<S, M> } } = {
  admin: {
    createResources: { documentsJson: [roleJson('ops')], force: false },
    deleteResource: { kind: 'user', name: 'ada' },
    createUser: { name: 'mallory', roles: ['editor'], traits: {} },
    lockUser: { name: 'ada', durationSeconds: 0, reason: 'stolen certificate' },
    unlockUser: { name: 'ada' },
    registerNode: {
      name: 'evil1',
      addr: '127.0.0.1:2222',
      labels: { env: 'prod' },
      hostPublicKey: NODE_HOST_KEY,
      identityPublicKeyPem: NODE_IDENTITY_PEM,
      force: false,
    },
  },
  // A person's own node access: no admin writes (sshd's checks use the node's identity, not authorize).
  nodes: {},
  devices: {
    addDevice: { osType: 'linux', assetTag: 'EVIL-1' },
    deleteDevice: { device: 'EVIL-1' },
    lockDevice: { device: 'EVIL-1', reason: '' },
    unlockDevice: { device: 'EVIL-1' },
    createDeviceEnrollToken: { device: 'EVIL-1', ttlSeconds: 0 },
  },
};
const writeCases = (Object.keys(everyWrite) as AdminServiceName[]).flatMap((service) =>
  Object.entries(everyWrite[service]).map(
    ([method, request]) => [`${service}.${method}`, { service, method, request }] as const,
  ),
);

describe('MFA for admin actions where WebAuthn is the only second factor', () => {
  it.each(writeCases)(
    '%s without a touch: MFA_REQUIRED, nothing stored changed',
    async (_name, { service, method, request }) => {
      const before = storedState();
      const call = (api[service] as unknown as Record<string, (r: unknown) => Promise<unknown>>)[method]!;
      await expect(call(request)).rejects.toMatchObject({
        code: 'MFA_REQUIRED',
        message: expect.stringMatching(/MFA for admin actions: .* needs a touch of your security key/),
      });
      expect(storedState()).toBe(before);
    },
  );

  const oidcWrites = [
    ['createResources', { documentsJson: [oidcJson('evil-idp')], force: false }],
    ['deleteResource', { kind: 'oidc', name: 'evil-idp' }],
  ] as const;
  it.each(oidcWrites)(
    'an oidc connector write (%s) without a touch: MFA_REQUIRED, nothing stored changed',
    async (method, request) => {
      const before = storedState();
      const call = (api.admin as unknown as Record<string, (r: unknown) => Promise<unknown>>)[method]!;
      await expect(call(request)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
      expect(storedState()).toBe(before);
    },
  );

  it('keyport admin create -f and rm of an oidc connector take one touch each', async () => {
    const file = join(work, 'oidc.yaml');
    await writeFile(file, JSON.stringify(JSON.parse(oidcJson('lab-idp'))));
    expect((await adminAsAda(['create', '-f', file])).touches).toBe(1);
    expect((await adminAsAda(['get', 'oidc'])).stdout).not.toContain('lab-secret');
    expect((await adminAsAda(['rm', 'oidc/lab-idp'])).touches).toBe(1);
  }, 120_000);

  it('reads need no touch: get, ls, status and the audit log', async () => {
    for (const args of [
      ['get', 'cap'],
      ['users', 'ls'],
      ['status'],
      ['devices', 'ls'],
      ['audit', '--limit', '5'],
    ]) {
      expect((await adminAsAda(args)).touches, args.join(' ')).toBe(0);
    }
  });

  it('each keyport admin write on users and resources takes one touch and is done', async () => {
    const added = await adminAsAda(['users', 'add', 'carl', '--roles', 'access']);
    expect(added.touches).toBe(1);
    expect(added.stdout).toMatch(/signup token: \S+/);
    expect((await adminAsAda(['users', 'lock', 'carl', '--reason', 'test'])).touches).toBe(1);
    expect((await adminAsAda(['users', 'unlock', 'carl'])).touches).toBe(1);
    const editor = join(work, 'edit.sh');
    await writeFile(editor, '#!/bin/sh\nsed -i "s/- ops-v1/- ops-v2/" "$1"\n', { mode: 0o755 });
    const file = join(work, 'role.yaml');
    await writeFile(
      file,
      'kind: role\nversion: v7\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins:\n      - ops-v1\n',
    );
    expect((await adminAsAda(['create', '-f', file])).touches).toBe(1);
    const nodeDir = join(work, 'node-n1');
    const node = await adminAsAda([
      'nodes',
      'add',
      '--name',
      'n1',
      '--addr',
      '127.0.0.1:2222',
      '--out',
      nodeDir,
    ]);
    expect(node.touches).toBe(1);
    expect(node.stdout).toContain('Node "n1" is registered');
    const edited = await adminAsAda(['edit', 'role/ops'], { EDITOR: editor });
    expect(edited.touches).toBe(1);
    expect(edited.stdout).toContain('role "ops" has been updated');
    expect((await adminAsAda(['get', 'role/ops'])).stdout).toContain('ops-v2');
    expect((await adminAsAda(['rm', 'role/ops'])).touches).toBe(1);
    expect((await adminAsAda(['users', 'rm', 'carl'])).touches).toBe(1);
  }, 300_000);

  it('each keyport admin devices write takes one touch and is done', async () => {
    expect((await adminAsAda(['devices', 'add', '--os', 'linux', '--asset-tag', 'LAB-1'])).touches).toBe(1);
    expect((await adminAsAda(['devices', 'lock', 'LAB-1'])).touches).toBe(1);
    expect((await adminAsAda(['devices', 'unlock', 'LAB-1'])).touches).toBe(1);
    const token = await adminAsAda(['devices', 'enroll', '--asset-tag', 'LAB-1']);
    expect(token.touches).toBe(1);
    expect(token.stdout).toMatch(/keyport device enroll --token=\S+/);
    expect((await adminAsAda(['devices', 'rm', 'LAB-1'])).touches).toBe(1);
  }, 300_000);

  it('one touch per command, even when the command makes several writes', async () => {
    // Three documents in one file: one call, one touch, all three written.
    const file = join(work, 'several.yaml');
    await writeFile(
      file,
      [
        'kind: role\nversion: v7\nmetadata:\n  name: red\nspec:\n  allow:\n    logins: [red]',
        'kind: role\nversion: v7\nmetadata:\n  name: blue\nspec:\n  allow:\n    logins: [blue]',
        'kind: user\nversion: v2\nmetadata:\n  name: dora\nspec:\n  roles: [red, blue]',
      ].join('\n---\n'),
    );
    const created = await adminAsAda(['create', '-f', file]);
    expect(created.touches).toBe(1);
    expect(created.stdout).toMatch(/role "red" has been created\nrole "blue" has been created\nuser "dora"/);
    // Two calls (add the device, then its enrollment token): one touch.
    const both = await adminAsAda(['devices', 'add', '--os', 'linux', '--asset-tag', 'LAB-2', '--enroll']);
    expect(both.touches).toBe(1);
    expect(both.stdout).toContain('Device LAB-2/linux added to the inventory');
    expect(both.stdout).toMatch(/keyport device enroll --token=\S+/);
  });

  it('an answer is good for the calls it named, once each, and for no other', async () => {
    const lock = { name: 'dora', durationSeconds: 0, reason: 'named' };
    const bound = await authorized([adminActionFor('admin', 'lockUser', lock)]);
    await bound.admin.lockUser(lock);
    // The same call again with the same answer: spent.
    let before = storedState();
    await expect(bound.admin.lockUser(lock)).rejects.toMatchObject({
      code: 'EXPIRED',
      message: expect.stringMatching(/already used/),
    });
    expect(storedState()).toBe(before);

    // An answer for one action, sent with another (another method, or the same method with another request).
    const unlock = { name: 'dora' };
    const forUnlock = await authorized([adminActionFor('admin', 'unlockUser', unlock)]);
    await expect(forUnlock.admin.deleteResource({ kind: 'user', name: 'dora' })).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/given for other admin actions/),
    });
    expect(storedState()).toBe(before);
    // Refused once, spent: not even its own action now.
    await expect(forUnlock.admin.unlockUser(unlock)).rejects.toMatchObject({ code: 'EXPIRED' });
    const forDora = await authorized([adminActionFor('admin', 'unlockUser', unlock)]);
    await expect(forDora.admin.unlockUser({ name: 'carl' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    expect(storedState()).toBe(before);

    // Several named calls: each once, in any order; an unnamed one is refused.
    const a = { osType: 'linux', assetTag: 'LAB-3' };
    const b = { osType: 'macos', assetTag: 'LAB-3' };
    const two = await authorized([
      adminActionFor('devices', 'addDevice', a),
      adminActionFor('devices', 'addDevice', b),
    ]);
    await two.devices.addDevice(b);
    before = storedState();
    await expect(two.devices.addDevice({ osType: 'windows', assetTag: 'LAB-3' })).rejects.toMatchObject({
      code: 'EXPIRED',
    });
    expect(storedState()).toBe(before);
    await two.devices.addDevice(a);
    await expect(two.devices.addDevice(a)).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('the calls after the first expire a minute later on the service clock', async () => {
    const lock = { name: 'dora', durationSeconds: 60, reason: 'brief' };
    const unlock = { name: 'dora' };
    const bound = await authorized([
      adminActionFor('admin', 'lockUser', lock),
      adminActionFor('admin', 'unlockUser', unlock),
    ]);
    await bound.admin.lockUser(lock);
    clock.advance(61_000);
    const before = storedState();
    await expect(bound.admin.unlockUser(unlock)).rejects.toMatchObject({
      code: 'EXPIRED',
      message: expect.stringMatching(/expired/),
    });
    expect(storedState()).toBe(before);
  });

  it('an answer to a LOGIN, MANAGE_DEVICES or USER_SESSION challenge is refused for an admin action', async () => {
    const lock = { name: 'dora', durationSeconds: 0, reason: 'wrong scope' };
    const anonymous = connectCluster({
      address: parseClusterAddress(cluster.address),
      caPem: (await new ProfileStore(home()).getTrustedCluster(parseClusterAddress(cluster.address)))!.caPem,
      caPin: cluster.caPin,
    });
    try {
      const login = await anonymous.auth.createAuthenticateChallenge({
        user: 'ada',
        password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      });
      const before = storedState();
      await expect(api.withAdminMfa(await answer(login)).admin.lockUser(lock)).rejects.toMatchObject({
        code: 'ACCESS_DENIED',
        message: expect.stringMatching(/another purpose/),
      });
      expect(storedState()).toBe(before);
    } finally {
      anonymous.close();
    }
    const manage = await api.user.createAuthenticateChallenge({
      scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
      adminActions: [],
    });
    const before = storedState();
    await expect(api.withAdminMfa(await answer(manage)).admin.lockUser(lock)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/another purpose/),
    });
    // A USER_SESSION challenge (per-session MFA) as stored: an admin-action challenge for this very call,
    // its scope rewritten in the database, answered by the key.
    const action = adminActionFor('admin', 'lockUser', lock);
    const session = await api.user.createAuthenticateChallenge({
      scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
      adminActions: [action],
    });
    const db = openClusterDb(cluster, { readonly: false });
    db.prepare("UPDATE challenges SET scope = 'CHALLENGE_SCOPE_USER_SESSION' WHERE id = ?").run(
      session.challengeId,
    );
    db.close();
    await expect(api.withAdminMfa(await answer(session)).admin.lockUser(lock)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/another purpose/),
    });
    expect(storedState()).toBe(before);
  });

  it('a challenge must name what it is for: no action, a bad method or digest, the same call twice', async () => {
    const ok = adminActionOf('/keyport.v1.AdminService/LockUser', Buffer.from('x'));
    for (const [adminActions, fieldPath] of [
      [[], 'admin_actions'],
      [[{ ...ok, method: 'LockUser' }], 'admin_actions[0].method'],
      [[{ ...ok, requestDigest: 'short' }], 'admin_actions[0].request_digest'],
      [[ok, ok], 'admin_actions[1]'],
      [Array.from({ length: 33 }, (_, i) => adminActionOf(ok.method, Buffer.from([i]))), 'admin_actions'],
    ] as const) {
      await expect(
        api.user.createAuthenticateChallenge({
          scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
          adminActions: [...adminActions],
        }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fields: { fieldPath } });
    }
  });

  it("refuses an answer that is not a security key's, one that does not verify, and one unreadable", async () => {
    const lock = { name: 'dora', durationSeconds: 0, reason: 'bad answers' };
    const action = adminActionFor('admin', 'lockUser', lock);
    const challenge = () =>
      api.user.createAuthenticateChallenge({
        scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
        adminActions: [action],
      });
    const before = storedState();
    // An OTP code, where only a security key answers.
    const otp = await challenge();
    expect(otp.totpAllowed).toBe(false);
    await expect(
      api
        .withAdminMfa({
          challengeId: otp.challengeId,
          response: { $case: 'totp', value: { code: '123456' } },
        })
        .admin.lockUser(lock),
    ).rejects.toMatchObject({ code: 'MFA_FAILED', message: expect.stringMatching(/not an OTP code/) });
    // The key's answer with its signature changed.
    const answered = await answer(await challenge());
    const assertion = JSON.parse((answered.response as { value: string }).value);
    const signature = Buffer.from(assertion.response.signature, 'base64url');
    signature[signature.length - 1]! ^= 1;
    assertion.response.signature = signature.toString('base64url');
    await expect(
      api
        .withAdminMfa({ ...answered, response: { $case: 'webauthnJson', value: JSON.stringify(assertion) } })
        .admin.lockUser(lock),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^(MFA_FAILED|ACCESS_DENIED)$/) });
    // An empty answer is no answer; one without a challenge id is unreadable; one over its bound is refused
    // before it is decoded.
    await expect(
      api.withAdminMfa({ challengeId: '', response: undefined }).admin.lockUser(lock),
    ).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    await expect(
      api.withAdminMfa({ ...answered, challengeId: '' }).admin.lockUser(lock),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not readable/) });
    await expect(
      api.withAdminMfa({ challengeId: 'x'.repeat(20_000), response: undefined }).admin.lockUser(lock),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/at most 16384 bytes/),
    });
    expect(storedState()).toBe(before);
  });

  it('refuses an answer another user gave, even for the very same call', async () => {
    const bobHome = join(work, 'bob');
    const added = await runAdmin(cluster, ['users', 'add', 'bob', '--roles', 'editor'], { env: clock.env });
    const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
    const asBob = (args: string[], input: string[]) =>
      runKeyport(args, {
        home: bobHome,
        input,
        env: { ...clock.env, KEYPORT_LAB_SECURITY_KEY: key.socketPath },
        timeoutMs: 60_000,
      });
    const bobPassword = 'bob-password-123';
    const signup = await asBob(
      [
        ...['signup', '--cluster', cluster.address, '--token', token, '--ca-pin', cluster.caPin],
        ...['--device', 'webauthn', '--device-name', 'bob-key'],
      ],
      [bobPassword],
    );
    expect(signup.code, signup.stderr).toBe(0);
    const login = await asBob(
      [
        ...['login', '--cluster', cluster.address, '--user', 'bob', '--ca-pin', cluster.caPin],
        ...['--password-stdin', '--keystore', 'file', '--mfa', 'key'],
      ],
      [bobPassword],
    );
    expect(login.code, login.stderr).toBe(0);
    const bobProfiles = new ProfileStore(bobHome);
    const bob = await connectAsProfile(bobProfiles, (await bobProfiles.getProfile())!);
    try {
      const lock = { name: 'dora', durationSeconds: 0, reason: 'whose touch' };
      const bobs = await bob.user.createAuthenticateChallenge({
        scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
        adminActions: [adminActionFor('admin', 'lockUser', lock)],
      });
      const bobsAnswer = await answer(bobs);
      const before = storedState();
      await expect(api.withAdminMfa(bobsAnswer).admin.lockUser(lock)).rejects.toMatchObject({
        code: 'ACCESS_DENIED',
        message: expect.stringMatching(/another user/),
      });
      expect(storedState()).toBe(before);
      // Spent by ada's attempt: bob's own call with it is refused too.
      await expect(bob.withAdminMfa(bobsAnswer).admin.lockUser(lock)).rejects.toMatchObject({
        code: 'EXPIRED',
      });
    } finally {
      bob.close();
    }
  });

  it('works the same for a session whose calls carry a proof of possession', async () => {
    const profiles = new ProfileStore(home());
    const pop = await connectAsProfile(profiles, (await profiles.getProfile())!, undefined, {
      proofOfPossession: true,
    });
    try {
      const lock = { name: 'dora', durationSeconds: 0, reason: 'pop' };
      await expect(pop.admin.lockUser(lock)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
      const bound = await authorizeAdminActions(pop, [adminActionFor('admin', 'lockUser', lock)], {
        origin,
        keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
        prompts: {
          otpCode: () => Promise.reject(new Error('no OTP here')),
          securityKey: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
        },
      });
      await bound.admin.lockUser(lock);
      await expect(bound.admin.lockUser(lock)).rejects.toMatchObject({ code: 'EXPIRED' });
      await (
        await authorized([adminActionFor('admin', 'unlockUser', { name: 'dora' })])
      ).admin.unlockUser({
        name: 'dora',
      });
    } finally {
      pop.close();
    }
  });

  it('the super-admin identity on the auth host (--data-dir) is exempt: no touch', async () => {
    const before = touches;
    const result = await runAdmin(cluster, ['users', 'lock', 'dora'], {
      env: { ...clock.env, KEYPORT_LAB_SECURITY_KEY: '' },
    });
    expect(result.code, result.stderr).toBe(0);
    const admin = await connectAsAdmin(cluster);
    try {
      await admin.admin.unlockUser({ name: 'dora' });
    } finally {
      admin.close();
    }
    expect(touches).toBe(before);
  });

  it('every refusal is in the audit log as mfa.admin_action, with its reason', async () => {
    const reasons = await auditReasons();
    // Every write sent without an answer, the two oidc connector writes, the empty answer, and the
    // proof-of-possession session's first call.
    expect(reasons.filter((r) => r === 'missing')).toHaveLength(writeCases.length + oidcWrites.length + 2);
    for (const reason of [
      'used',
      'another action',
      'expired',
      'another purpose',
      'another user',
      'not a security key',
      'security key',
      'malformed',
    ]) {
      expect(reasons, reason).toContain(reason);
    }
  });

  it('with OTP allowed too, admin actions need no touch (the seed enforces it only where WebAuthn is the only factor)', async () => {
    const file = join(work, 'cap.yaml');
    await writeFile(file, capYaml('[webauthn, otp]'));
    expect((await runAdmin(cluster, ['create', '-f', file], { env: clock.env })).code).toBe(0);
    try {
      const challenge = await api.user.createAuthenticateChallenge({
        scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
        adminActions: [adminActionFor('admin', 'unlockUser', { name: 'dora' })],
      });
      expect(challenge.mfaRequired).toBe(false);
      await api.admin.lockUser({ name: 'dora', durationSeconds: 0, reason: '' });
      expect((await adminAsAda(['users', 'unlock', 'dora'])).touches).toBe(0);
    } finally {
      await writeFile(file, capYaml('[webauthn]'));
      expect((await runAdmin(cluster, ['create', '-f', file], { env: clock.env })).code).toBe(0);
    }
    await expect(api.admin.lockUser({ name: 'dora', durationSeconds: 0, reason: '' })).rejects.toMatchObject({
      code: 'MFA_REQUIRED',
    });
  });
});
