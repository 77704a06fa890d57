// The store conformance suite: every method of Store, ThrottleStore and DeviceStore, and every single-use
// spend, alike on SQLite and on PostgreSQL (a lab server, a fresh database per test, a pool of several
// connections so concurrent spends really race). The last test of each backend checks that every method
// was called.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startLabPostgres } from '../../lab/postgres';
import type { LabPostgres } from '../../lab/postgres';
import { SEALED_FAMILY } from '../secrets';
import { DeviceStore } from './devices';
import { LoginStore } from './login';
import { ConnectorStore } from './connectors';
import { SsoRequestStore } from './sso-requests';
import { NodeStore } from './nodes';
import { openPostgresStore, openSqliteStore, Store } from './store';
import { ThrottleStore } from './throttle';
import { WebSessionStore } from './web-sessions';
import { WebApprovalStore } from './web-approvals';

const T = 1_700_000_000_000; // milliseconds beyond 2^32: bigint columns must come back as numbers

type Backend = { kind: 'sqlite' | 'postgresql'; open(): Promise<{ store: Store; done(): Promise<void> }> };

let lab: LabPostgres | undefined;

const backends: Backend[] = [
  {
    kind: 'sqlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'keyport-conformance-'));
      const store = await openSqliteStore(dir);
      return { store, done: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    kind: 'postgresql',
    async open() {
      lab ??= await startLabPostgres();
      const connString = await lab.createDatabase();
      const store = await openPostgresStore({ connString, poolSize: 8, statementTimeoutMs: 30_000 });
      return { store, done: async () => undefined };
    },
  },
];

afterAll(async () => {
  await lab?.stop();
});

/** Records the methods called on a store (and on its throttle and devices). */
function recording<S extends object>(target: S, name: string, seen: Set<string>): S {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof property !== 'string') return value;
      if (
        value instanceof ThrottleStore ||
        value instanceof LoginStore ||
        value instanceof DeviceStore ||
        value instanceof NodeStore ||
        value instanceof ConnectorStore ||
        value instanceof WebSessionStore ||
        value instanceof WebApprovalStore ||
        value instanceof SsoRequestStore
      ) {
        seen.add(`${name}.${property}`);
        return recording(value, value.constructor.name, seen);
      }
      if (typeof value === 'function') {
        seen.add(`${name}.${property}`);
        return (value as (...args: unknown[]) => unknown).bind(object);
      }
      return value;
    },
  });
}

function methodsOf(prototype: object, name: string, except: string[] = []): string[] {
  return Object.getOwnPropertyNames(prototype)
    .filter((m) => m !== 'constructor' && !except.includes(m))
    .map((m) => `${name}.${m}`);
}

const user = (name: string) => `{"roles":["access"],"name":"${name}"}`;
const totpDevice = (id: string, owner = 'alice', name = `otp-${id}`) => ({
  id,
  user: owner,
  name,
  type: 'totp' as const,
  added_ms: T,
  passkey: 0,
  totp_secret: `plain-${id}`,
});
const challenge = (id: string, userName: string | null = 'alice', expires = T + 60_000) => ({
  id,
  user: userName,
  scope: 'LOGIN',
  payload_json: '{"n":1}',
  created_ms: T,
  expires_ms: expires,
  used: 0,
});
const webSession = (id: string, owner = 'alice', expires = T + 60_000) => ({
  id,
  token_hash: `hash-${id}`,
  user: owner,
  login_method: 'password and OTP',
  mfa_verified: 1,
  client_addr: '127.0.0.1',
  user_agent: 'Chromium',
  created_ms: T,
  expires_ms: expires,
});
const deviceRow = (id: string, assetTag = `tag-${id}`) => ({
  id,
  os_type: 'linux',
  asset_tag: assetTag,
  source: 'manual',
  enroll_status: 'not_enrolled' as const,
  created_ms: T,
  updated_ms: T,
  locked: 0,
});
const credential = (n: string) => ({
  credentialId: `cred-${n}`,
  akPublic: `ak-${n}`,
  ekFingerprint: `ek-${n}`,
  ekCertificate: null,
  owner: 'alice',
});

describe.each(backends)('store on $kind', (backend) => {
  const seen = new Set<string>();
  let opened: { store: Store; done(): Promise<void> };
  let store: Store;

  beforeAll(() => seen.clear());
  beforeEach(async () => {
    opened = await backend.open();
    store = recording(opened.store, 'Store', seen);
  });
  afterEach(async () => {
    await store.close();
    await opened.done();
  });

  it('inserts, reads, updates, locks and lists users, with numbers for bigint columns', async () => {
    expect(await store.insertUser('bob', user('bob'), T)).toBe(true);
    expect(await store.insertUser('alice', user('alice'), T)).toBe(true);
    expect(await store.insertUser('alice', '{}', T + 1)).toBe(false);
    expect(await store.getUser('alice')).toEqual({
      name: 'alice',
      spec_json: user('alice'),
      password_hash: null,
      created_ms: T,
      updated_ms: T,
      locked_until_ms: null,
      lock_reason: null,
      webauthn_user_handle: null,
      sso_connector: null,
      sso_subject: null,
    });
    expect(await store.getUser('nobody')).toBeUndefined();
    expect(await store.countUsers()).toBe(2);
    expect((await store.listUsers()).map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(await store.updateUserSpec('alice', '{"v":2}', T + 2)).toBe(true);
    expect(await store.updateUserSpec('nobody', '{}', T + 2)).toBe(false);
    await store.setPasswordHash('alice', '$argon2id$hash', T + 3);
    expect(await store.setLock('alice', T + 10_000, 'too many tries', T + 4)).toBe(true);
    expect(await store.setLock('nobody', null, null, T + 4)).toBe(false);
    expect(await store.getUser('alice')).toMatchObject({
      spec_json: '{"v":2}',
      password_hash: '$argon2id$hash',
      locked_until_ms: T + 10_000,
      lock_reason: 'too many tries',
      updated_ms: T + 4,
    });
  });

  it('makes one WebAuthn user handle per user, also when two calls race, and finds the user by it', async () => {
    await store.insertUser('alice', user('alice'), T);
    let n = 0;
    const handles = await Promise.all(
      Array.from({ length: 10 }, () => store.webauthnUserHandle('alice', () => `handle-${++n}`)),
    );
    expect(new Set(handles).size).toBe(1);
    expect((await store.getUserByWebauthnHandle(handles[0]!))?.name).toBe('alice');
    expect(await store.getUserByWebauthnHandle('other')).toBeUndefined();
    await expect(store.webauthnUserHandle('nobody', () => 'x')).rejects.toThrow('no user');
  });

  it('deletes a user with their devices, tokens, challenges and attempts', async () => {
    await store.insertUser('alice', user('alice'), T);
    await store.insertDevice(totpDevice('d1'));
    await store.insertSignupToken({
      token_hash: 'h',
      user: 'alice',
      created_ms: T,
      expires_ms: T + 1,
      used: 0,
    });
    await store.insertChallenge(challenge('c'));
    await store.throttle.recordFailure('alice', '10.0.0.1', T);
    await store.webSessions.insert(webSession('w'));
    expect(await store.deleteUser('alice')).toBe(true);
    expect(await store.deleteUser('alice')).toBe(false);
    expect(await store.listDevices('alice')).toEqual([]);
    expect(await store.getSignupToken('h')).toBeUndefined();
    expect(await store.consumeChallenge('c')).toBeUndefined();
    expect((await store.throttle.countAttempts('alice', '10.0.0.1', 0, T)).failed).toBe(0);
    expect(await store.webSessions.find('hash-w', T)).toBeUndefined();
  });

  it('writes roles (replacing only when asked), counts, lists and deletes them', async () => {
    expect(await store.putRole('r', '{"v":1}', false, T)).toBe(true);
    expect(await store.putRole('r', '{"v":2}', false, T)).toBe(false);
    expect(await store.getRoleJson('r')).toBe('{"v":1}');
    expect(await store.putRole('r', '{"v":3}', true, T)).toBe(true);
    expect(await store.putRole('a', '{"v":0}', false, T)).toBe(true);
    expect(await store.listRoleJson()).toEqual(['{"v":0}', '{"v":3}']);
    expect(await store.countRoles()).toBe(2);
    // Several by name in one statement: only those that exist.
    expect(await store.getRoleJsons(['r', 'missing', 'a'])).toEqual(
      new Map([
        ['r', '{"v":3}'],
        ['a', '{"v":0}'],
      ]),
    );
    expect(await store.getRoleJsons([])).toEqual(new Map());
    expect(await store.deleteRole('r')).toBe(true);
    expect(await store.deleteRole('r')).toBe(false);
    expect(await store.getRoleJson('r')).toBeUndefined();
  });

  it('keeps cluster configuration by key', async () => {
    expect(await store.getConfig('cluster_name')).toBeUndefined();
    await store.putConfig('cluster_name', '"lab"', T);
    await store.putConfig('cluster_name', '"lab2"', T + 1);
    expect(await store.getConfig('cluster_name')).toBe('"lab2"');
  });

  it('spends a signup token once among 50 racing spends, and never an expired one', async () => {
    await store.insertSignupToken({
      token_hash: 'h',
      user: 'alice',
      created_ms: T,
      expires_ms: T + 10,
      used: 0,
    });
    await store.insertSignupToken({ token_hash: 'old', user: 'bob', created_ms: T, expires_ms: T, used: 0 });
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeSignupToken('h', T + 5)));
    expect(results.filter(Boolean)).toEqual([
      {
        token_hash: 'h',
        user: 'alice',
        created_ms: T,
        expires_ms: T + 10,
        used: 1,
        pending_totp_secret: null,
      },
    ]);
    expect(await store.consumeSignupToken('h', T + 5)).toBeUndefined();
    expect(await store.consumeSignupToken('old', T)).toBeUndefined();
    expect((await store.getSignupToken('old'))?.used).toBe(0);
    expect(await store.consumeSignupToken('never', T)).toBeUndefined();
  });

  it('offers one pending TOTP secret per token, also to racing calls, and none once spent', async () => {
    await store.insertSignupToken({
      token_hash: 'h',
      user: 'alice',
      created_ms: T,
      expires_ms: T + 10,
      used: 0,
    });
    const secrets = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.pendingTotpSecret('h', `secret-${i}`)),
    );
    expect(new Set(secrets).size).toBe(1);
    expect(secrets[0]).toMatch(/^secret-/);
    expect(await store.pendingTotpSecret('h', 'another')).toBe(secrets[0]);
    expect(await store.listSignupTokensWithPlainSeeds()).toEqual([
      { token_hash: 'h', user: 'alice', pending_totp_secret: secrets[0] },
    ]);
    await store.setSignupTotpSeed('h', `${SEALED_FAMILY}sealed`);
    expect(await store.listSignupTokensWithPlainSeeds()).toEqual([]);
    expect(await store.pendingTotpSecret('h', 'another')).toBe(`${SEALED_FAMILY}sealed`);
    await store.clearPendingTotpSecret('h');
    expect((await store.getSignupToken('h'))?.pending_totp_secret).toBeNull();
    await store.consumeSignupToken('h', T);
    expect(await store.pendingTotpSecret('h', 'late')).toBeUndefined();
  });

  it('keeps MFA devices unique per user name, finds them by credential and deletes them', async () => {
    await store.insertUser('alice', user('alice'), T);
    expect(await store.insertDevice(totpDevice('d1', 'alice', 'otp'))).toBe(true);
    expect(await store.insertDevice(totpDevice('d2', 'alice', 'otp'))).toBe(false);
    expect(await store.insertDevice(totpDevice('d3', 'bob', 'otp'))).toBe(true);
    expect(
      await store.insertDevice({
        id: 'k1',
        user: 'alice',
        name: 'key',
        type: 'webauthn',
        added_ms: T + 1,
        webauthn_credential_id: 'cred',
        webauthn_public_key: 'pub',
        webauthn_sign_count: 0,
        webauthn_aaguid: 'aaguid',
        passkey: 1,
      }),
    ).toBe(true);
    expect((await store.listDevices('alice')).map((d) => d.id)).toEqual(['d1', 'k1']);
    expect(await store.getDeviceByCredentialId('cred')).toMatchObject({
      id: 'k1',
      webauthn_sign_count: 0,
      passkey: 1,
      added_ms: T + 1,
    });
    expect(await store.getDeviceByCredentialId('none')).toBeUndefined();
    expect(await store.deleteDevice('alice', 'otp')).toBe(true);
    expect(await store.deleteDevice('alice', 'otp')).toBe(false);
  });

  it('reads a passkey with its owner, as locked now, a config value and its failures at an address in one statement', async () => {
    await store.insertUser('alice', user('alice'), T);
    const handle = await store.webauthnUserHandle('alice', () => 'handle-a');
    await store.insertDevice({
      id: 'k1',
      user: 'alice',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'cred',
      webauthn_public_key: 'pub',
      webauthn_sign_count: 3,
      passkey: 1,
    });
    expect(await store.getPasskeyLogin('cred', 'cap', '10.0.0.1')).toEqual({
      device: await store.getDeviceByCredentialId('cred'),
      owner: await store.getUser('alice'),
      ownerRoles: {},
      failedHere: false,
    });
    // The roles the owner's spec names, as stored now: not another role, not one deleted.
    const access = { kind: 'role', metadata: { name: 'access' }, spec: { allow: { logins: ['a'] } } };
    await store.putRole('access', JSON.stringify(access), false, T);
    await store.putRole('editor', '{"kind":"role"}', false, T);
    await store.putRole('ops', '{"kind":"role"}', false, T);
    await store.updateUserSpec('alice', '{"roles":["access","ops","none"]}', T);
    expect((await store.getPasskeyLogin('cred', 'cap', '10.0.0.1'))?.ownerRoles).toEqual({
      access,
      ops: { kind: 'role' },
    });
    await store.deleteRole('ops');
    expect((await store.getPasskeyLogin('cred', 'cap', '10.0.0.1'))?.ownerRoles).toEqual({ access });
    await store.updateUserSpec('alice', '{}', T);
    expect((await store.getPasskeyLogin('cred', 'cap', '10.0.0.1'))?.ownerRoles).toEqual({});
    await store.updateUserSpec('alice', '{"roles":["access"]}', T);
    await store.putConfig('cap', '{"v":1}', T);
    await store.setLock('alice', T + 10_000, 'locked by an admin', T + 1);
    // Failures of alice at this address count; a pending reservation, another address or user do not.
    await store.throttle.recordFailure('alice', '10.0.0.1', T);
    await store.throttle.recordFailure('alice', '10.0.0.1', T + 1);
    await store.throttle.addPending('alice', '10.0.0.2', T, T + 100);
    await store.throttle.recordFailure('bob', '10.0.0.2', T);
    const read = await store.getPasskeyLogin('cred', 'cap', '10.0.0.1');
    expect(read).toEqual({
      device: await store.getDeviceByCredentialId('cred'),
      owner: await store.getUser('alice'),
      ownerRoles: { access },
      configJson: '{"v":1}',
      failedHere: true,
    });
    expect((await store.getPasskeyLogin('cred', 'cap', '10.0.0.2'))?.failedHere).toBe(false);
    await store.throttle.clearFailures('alice', '10.0.0.1');
    expect((await store.getPasskeyLogin('cred', 'cap', '10.0.0.1'))?.failedHere).toBe(false);
    expect(read?.owner).toMatchObject({
      webauthn_user_handle: handle,
      locked_until_ms: T + 10_000,
      lock_reason: 'locked by an admin',
      created_ms: T,
    });
    expect(read?.device).toMatchObject({ id: 'k1', webauthn_sign_count: 3, added_ms: T });
    expect(await store.getPasskeyLogin('none', 'cap', '10.0.0.1')).toBeUndefined();
    await store.insertDevice({
      id: 'k2',
      user: 'gone',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'orphan',
      passkey: 1,
    });
    expect(await store.getPasskeyLogin('orphan', 'cap', '10.0.0.1')).toEqual({
      device: await store.getDeviceByCredentialId('orphan'),
      configJson: '{"v":1}',
      failedHere: false,
    });
  });

  it('lists plain TOTP seeds until they are sealed', async () => {
    await store.insertDevice(totpDevice('d1'));
    expect(await store.listTotpDevicesWithPlainSeeds()).toEqual([
      { id: 'd1', user: 'alice', totp_secret: 'plain-d1' },
    ]);
    await store.setTotpSeed('d1', `${SEALED_FAMILY}sealed`);
    expect(await store.listTotpDevicesWithPlainSeeds()).toEqual([]);
  });

  it('accepts each TOTP step once, never an older one, and one of 50 racing uses of a step', async () => {
    await store.insertDevice(totpDevice('d1'));
    expect(await store.acceptTotpStep('d1', 100, T)).toBe(true);
    expect(await store.acceptTotpStep('d1', 100, T)).toBe(false);
    expect(await store.acceptTotpStep('d1', 99, T)).toBe(false);
    const racing = await Promise.all(
      Array.from({ length: 50 }, () => store.acceptTotpStep('d1', 101, T + 1)),
    );
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect((await store.listDevices('alice'))[0]).toMatchObject({ totp_last_step: 101, last_used_ms: T + 1 });
  });

  it('moves a WebAuthn counter forward once among racing assertions', async () => {
    await store.insertDevice({
      id: 'k1',
      user: 'alice',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'cred',
      webauthn_sign_count: 5,
      passkey: 0,
    });
    const racing = await Promise.all(
      Array.from({ length: 20 }, () => store.acceptWebauthnCounter('k1', 5, 6, T + 1)),
    );
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect(await store.acceptWebauthnCounter('k1', 5, 7, T + 2)).toBe(false);
    expect(await store.getDeviceByCredentialId('cred')).toMatchObject({
      webauthn_sign_count: 6,
      last_used_ms: T + 1,
    });
  });

  it('spends a challenge once among 50 racing spends', async () => {
    await store.insertChallenge(challenge('c'));
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeChallenge('c')));
    expect(results.filter(Boolean)).toEqual([{ ...challenge('c'), used: 1 }]);
    expect(await store.consumeChallenge('c')).toBeUndefined();
    expect(await store.consumeChallenge('never')).toBeUndefined();
  });

  it('deletes a challenge stored for a refused call, and nothing else', async () => {
    await store.insertChallenge(challenge('c'));
    await store.insertChallenge(challenge('d'));
    expect(await store.deleteChallenge('c')).toBe(true);
    expect(await store.deleteChallenge('c')).toBe(false);
    expect(await store.consumeChallenge('c')).toBeUndefined();
    expect(await store.consumeChallenge('d')).toEqual({ ...challenge('d'), used: 1 });
  });

  it('counts a rate-limit hit, reads a config value and stores a challenge in one call, none past the limit', async () => {
    const rate = { key: 'addr:p', nowMs: T + 1, windowMs: 60_000, limit: 2 };
    const windowEndMs = T + 1 - ((T + 1) % 60_000) + 60_000;
    expect(await store.login.hitStoringChallenge(rate, 'cap', challenge('c1', null))).toEqual({
      count: 1,
      windowEndMs,
      stored: true,
    });
    await store.putConfig('cap', '{"v":1}', T);
    expect(await store.login.hitStoringChallenge(rate, 'cap', challenge('c2', null))).toEqual({
      count: 2,
      windowEndMs,
      configJson: '{"v":1}',
      stored: true,
    });
    // Past the limit: counted, and the challenge is not stored.
    expect(await store.login.hitStoringChallenge(rate, 'cap', challenge('c3', null))).toEqual({
      count: 3,
      windowEndMs,
      configJson: '{"v":1}',
      stored: false,
    });
    expect(await store.consumeChallenge('c3')).toBeUndefined();
    expect(await store.consumeChallenge('c1')).toEqual({ ...challenge('c1', null), used: 1 });
    expect(await store.consumeChallenge('c2')).toEqual({ ...challenge('c2', null), used: 1 });
    // Racing calls: every count distinct, and exactly the limit's worth of challenges stored.
    const racing = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.login.hitStoringChallenge(
          { ...rate, key: 'addr:q', limit: 4 },
          'cap',
          challenge(`r${i}`, null),
        ),
      ),
    );
    expect(racing.map((r) => r.count).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(
      racing
        .filter((r) => r.stored)
        .map((r) => r.count)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    const spent = await Promise.all(racing.map((_, i) => store.consumeChallenge(`r${i}`)));
    expect(spent.filter(Boolean)).toHaveLength(4);
    // A new window starts the count again.
    expect(
      await store.login.hitStoringChallenge({ ...rate, nowMs: windowEndMs }, 'cap', challenge('c4', null)),
    ).toMatchObject({ count: 1, stored: true });
  });

  it('spends a challenge and reads the passkey in one call, the spend once among 50 racing calls', async () => {
    await store.insertUser('alice', user('alice'), T);
    await store.webauthnUserHandle('alice', () => 'handle-a');
    await store.insertDevice({
      id: 'k1',
      user: 'alice',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'cred',
      webauthn_public_key: 'pub',
      webauthn_sign_count: 3,
      passkey: 1,
    });
    await store.putConfig('cap', '{"v":1}', T);
    await store.putRole('access', '{"kind":"role","spec":{"n":1}}', false, T);
    await store.throttle.recordFailure('alice', '10.0.0.1', T);
    await store.insertChallenge(challenge('c', null));
    const passkey = await store.getPasskeyLogin('cred', 'cap', '10.0.0.1');
    expect(passkey).toMatchObject({
      configJson: '{"v":1}',
      failedHere: true,
      ownerRoles: { access: { kind: 'role', spec: { n: 1 } } },
      owner: { name: 'alice', webauthn_user_handle: 'handle-a', created_ms: T },
      device: { id: 'k1', webauthn_sign_count: 3, added_ms: T },
    });
    expect(await store.login.spendReadingPasskey('c', 'cred', 'cap', '10.0.0.1')).toEqual({
      challenge: { ...challenge('c', null), used: 1 },
      passkey,
    });
    // Spent: the passkey is still read, the challenge is not returned again.
    expect(await store.login.spendReadingPasskey('c', 'cred', 'cap', '10.0.0.1')).toEqual({ passkey });
    // No such key: the challenge is spent all the same.
    await store.insertChallenge(challenge('d', 'alice'));
    expect(await store.login.spendReadingPasskey('d', 'none', 'cap', '10.0.0.1')).toEqual({
      challenge: { ...challenge('d', 'alice'), used: 1 },
    });
    expect(await store.login.spendReadingPasskey('never', 'none', 'cap', '10.0.0.1')).toEqual({});
    // A key whose owner is gone: the key alone, as getPasskeyLogin reads it.
    await store.insertDevice({
      id: 'k2',
      user: 'gone',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'orphan',
      passkey: 1,
    });
    const orphan = await store.login.spendReadingPasskey('never', 'orphan', 'cap', '10.0.0.1');
    expect(orphan).toEqual({ passkey: await store.getPasskeyLogin('orphan', 'cap', '10.0.0.1') });
    expect(orphan.passkey).not.toHaveProperty('owner');
    await store.insertChallenge(challenge('e', null));
    const racing = await Promise.all(
      Array.from({ length: 50 }, () => store.login.spendReadingPasskey('e', 'cred', 'cap', '10.0.0.2')),
    );
    expect(racing.filter((r) => r.challenge)).toHaveLength(1);
    expect(racing.every((r) => r.passkey?.device.id === 'k1' && !r.passkey.failedHere)).toBe(true);
  });

  it('moves a sign counter forward with the login audit in one call, and writes neither for a racing loser', async () => {
    await store.insertDevice({
      id: 'k1',
      user: 'alice',
      name: 'key',
      type: 'webauthn',
      added_ms: T,
      webauthn_credential_id: 'cred',
      webauthn_sign_count: 5,
      passkey: 1,
    });
    const event = (message: string) => ({
      time_ms: T + 1,
      type: 'user.login',
      actor: 'alice',
      client_addr: '127.0.0.1:1',
      success: 1,
      message,
      fields_json: '{"roles":["access"]}',
    });
    const advance = { deviceId: 'k1', previous: 5, counter: 6 };
    const racing = await Promise.all(
      Array.from({ length: 20 }, () =>
        store.login.acceptCounterWithAudit(advance, T + 1, [event('login'), event('cert')]),
      ),
    );
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect((await store.listAudit({})).map(({ id: _, ...e }) => e)).toEqual([event('login'), event('cert')]);
    expect(await store.getDeviceByCredentialId('cred')).toMatchObject({
      webauthn_sign_count: 6,
      last_used_ms: T + 1,
    });
    // An old counter: nothing written.
    expect(await store.login.acceptCounterWithAudit({ ...advance, counter: 7 }, T + 2, [event('x')])).toBe(
      false,
    );
    expect(await store.listAudit({})).toHaveLength(2);
    expect(await store.getDeviceByCredentialId('cred')).toMatchObject({ webauthn_sign_count: 6 });
    // One and three events.
    expect(
      await store.login.acceptCounterWithAudit({ ...advance, previous: 6, counter: 7 }, T + 3, [
        event('one'),
      ]),
    ).toBe(true);
    expect(
      await store.login.acceptCounterWithAudit({ ...advance, previous: 7, counter: 9 }, T + 4, [
        event('a'),
        event('b'),
        event('c'),
      ]),
    ).toBe(true);
    expect((await store.listAudit({})).map((e) => e.message)).toEqual([
      'login',
      'cert',
      'one',
      'a',
      'b',
      'c',
    ]);
    await expect(store.login.acceptCounterWithAudit({ ...advance, previous: 9 }, T, [])).rejects.toThrow(
      /one to three/,
    );
    expect(await store.getDeviceByCredentialId('cred')).toMatchObject({ webauthn_sign_count: 9 });
  });

  it('spends a proof-of-possession nonce once among 50 racing spends, and an expired one once again', async () => {
    const racing = await Promise.all(
      Array.from({ length: 50 }, () => store.spendPopNonce('nonce-1', T + 120_000, T)),
    );
    expect(racing.filter(Boolean)).toHaveLength(1);
    // Held through its expiry, inclusive; other nonces are their own.
    expect(await store.spendPopNonce('nonce-1', T + 240_000, T + 120_000)).toBe(false);
    expect(await store.spendPopNonce('nonce-2', T + 120_000, T)).toBe(true);
    // Once expired, one of 50 racing spends takes it over, with the new expiry.
    const again = await Promise.all(
      Array.from({ length: 50 }, () => store.spendPopNonce('nonce-1', T + 360_000, T + 120_001)),
    );
    expect(again.filter(Boolean)).toHaveLength(1);
    expect(await store.spendPopNonce('nonce-1', T + 480_000, T + 360_000)).toBe(false);
    expect(await store.spendPopNonce('nonce-1', T + 480_000, T + 360_001)).toBe(true);
  });

  it('rolls a failed transaction back whole, and commits a good one', async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.insertUser('carol', user('carol'), T);
        await tx.putRole('r', '{}', false, T);
        throw new Error('crash in the middle');
      }),
    ).rejects.toThrow('crash in the middle');
    expect(await store.getUser('carol')).toBeUndefined();
    expect(await store.getRoleJson('r')).toBeUndefined();
    expect(
      await store.transaction(async (tx) => {
        await tx.insertUser('carol', user('carol'), T);
        return tx.transaction(async (inner) => inner.putRole('r', '{}', false, T));
      }),
    ).toBe(true);
    expect((await store.getUser('carol'))?.name).toBe('carol');
  });

  it('appends and lists the audit log, newest last, by time, type and limit', async () => {
    for (let i = 0; i < 5; i++) {
      await store.appendAudit({
        time_ms: T + i,
        type: i % 2 ? 'user.login' : 'role.put',
        actor: 'alice',
        client_addr: '10.0.0.1',
        success: i % 2,
        message: `event ${i}`,
        fields_json: `{"i":${i}}`,
      });
    }
    const all = await store.listAudit({});
    expect(all.map((e) => e.message)).toEqual(['event 0', 'event 1', 'event 2', 'event 3', 'event 4']);
    expect(typeof all[0]!.id).toBe('number');
    expect(all[0]).toMatchObject({ time_ms: T, success: 0, fields_json: '{"i":0}' });
    expect((await store.listAudit({ sinceMs: T + 3 })).map((e) => e.time_ms)).toEqual([T + 3, T + 4]);
    expect((await store.listAudit({ type: 'user.login' })).map((e) => e.success)).toEqual([1, 1]);
    expect((await store.listAudit({ limit: 2 })).map((e) => e.message)).toEqual(['event 3', 'event 4']);
    // Several rows in one statement, in order; none for an empty list.
    const event = (message: string) => ({
      time_ms: T + 9,
      type: 'cert.issued',
      actor: 'bob',
      client_addr: '10.0.0.2',
      success: 1,
      message,
      fields_json: '{}',
    });
    await store.appendAudit([event('pair 1'), event('pair 2')]);
    await store.appendAudit([]);
    expect((await store.listAudit({ sinceMs: T + 9 })).map((e) => e.message)).toEqual(['pair 1', 'pair 2']);
  });

  it('prunes spent and expired single-use rows, expired nonces, old attempts and old tokens', async () => {
    const day = 24 * 60 * 60 * 1000;
    await store.insertChallenge(challenge('spent'));
    await store.consumeChallenge('spent');
    await store.insertChallenge(challenge('expired', 'alice', T - 1));
    await store.insertChallenge(challenge('live'));
    await store.insertSignupToken({
      token_hash: 'old',
      user: 'a',
      created_ms: 0,
      expires_ms: T - day - 1,
      used: 0,
    });
    await store.insertSignupToken({
      token_hash: 'late',
      user: 'a',
      created_ms: 0,
      expires_ms: T - 1,
      used: 0,
    });
    await store.devices.insert(deviceRow('dev'));
    await store.devices.insertToken('t-old', 'dev', 0, T - day - 1);
    await store.devices.insertToken('t-live', 'dev', T, T + 1);
    await store.throttle.recordFailure('alice', '10.0.0.1', T - 10_000);
    await store.throttle.recordFailure('alice', '10.0.0.1', T);
    await store.spendPopNonce('nonce-old', T - 1, T - 200_000);
    await store.spendPopNonce('nonce-live', T, T - 200_000);
    await store.prune(T, 5_000);
    // A pruned nonce's row is gone: spending it at a time before its old expiry inserts it afresh.
    expect(await store.spendPopNonce('nonce-old', T + 120_000, T - 300_000)).toBe(true);
    expect(await store.spendPopNonce('nonce-live', T + 120_000, T - 300_000)).toBe(false);
    expect(await store.consumeChallenge('live')).toBeDefined();
    expect(await store.consumeChallenge('expired')).toBeUndefined();
    expect(await store.getSignupToken('old')).toBeUndefined();
    expect(await store.getSignupToken('late')).toBeDefined();
    expect(await store.devices.peekToken('t-old')).toBeUndefined();
    expect(await store.devices.peekToken('t-live')).toBeDefined();
    expect((await store.throttle.countAttempts('alice', '10.0.0.1', 0, T)).failed).toBe(1);
  });

  it('counts failures per (name, address) within a window, and reservations until they expire', async () => {
    const throttle = store.throttle;
    for (const time of [10, 20, 30]) await throttle.recordFailure('alice', '10.0.0.1', T + time);
    await throttle.recordFailure('alice', '10.0.0.2', T + 30);
    const pending = await throttle.addPending('alice', '10.0.0.1', T + 30, T + 100);
    expect(typeof pending).toBe('number');
    expect(await throttle.countAttempts('alice', '10.0.0.1', T + 15, T + 50)).toEqual({
      failed: 2,
      pending: 1,
      lastFailureMs: T + 30,
    });
    expect((await throttle.countAttempts('alice', '10.0.0.1', T + 15, T + 100)).pending).toBe(0);
    await throttle.markFailed(pending, T + 40);
    expect(await throttle.lockouts('alice', 0, 4, 1000)).toEqual([
      { name: 'alice', clientAddr: '10.0.0.1', failed: 4, untilMs: T + 1040 },
    ]);
    const other = await throttle.addPending('alice', '10.0.0.3', T, T + 100);
    await throttle.deleteAttempt(other);
    expect((await throttle.countAttempts('alice', '10.0.0.3', 0, T)).pending).toBe(0);
    // A pending reservation is not a failure: forgiving leaves it.
    const reservation = await throttle.addPending('alice', '10.0.0.1', T, T + 100);
    await throttle.forgiveFailures('alice', '10.0.0.1');
    expect(await throttle.countAttempts('alice', '10.0.0.1', 0, T + 50)).toMatchObject({
      failed: 0,
      pending: 1,
    });
    expect((await throttle.countAttempts('alice', '10.0.0.2', 0, T + 50)).failed).toBe(1);
    await throttle.deleteAttempt(reservation);
    await throttle.forgiveFailures('alice', '10.0.0.9');
    await throttle.recordFailure('alice', '10.0.0.1', T + 1);
    await throttle.clearFailures('alice', '10.0.0.1');
    expect((await throttle.countAttempts('alice', '10.0.0.1', 0, T + 50)).failed).toBe(0);
    expect((await throttle.countAttempts('alice', '10.0.0.2', 0, T + 50)).failed).toBe(1);
    await throttle.clearFailures('alice');
    expect((await throttle.countAttempts('alice', '10.0.0.2', 0, T + 50)).failed).toBe(0);
  });

  it('reserves at most the limit when 20 count-then-reserve transactions race (lockAttempts)', async () => {
    const reserve = () =>
      store.transaction(async (tx) => {
        await tx.throttle.lockAttempts('bob', '10.0.0.9');
        const counts = await tx.throttle.countAttempts('bob', '10.0.0.9', 0, T);
        if (counts.failed + counts.pending >= 5) return false;
        await tx.throttle.addPending('bob', '10.0.0.9', T, T + 30_000);
        return true;
      });
    const admitted = await Promise.all(Array.from({ length: 20 }, reserve));
    expect(admitted.filter(Boolean)).toHaveLength(5);
    expect((await store.throttle.countAttempts('bob', '10.0.0.9', 0, T)).pending).toBe(5);
    await expect(store.throttle.lockAttempts('bob', '10.0.0.9')).rejects.toThrow(/only inside a transaction/);
  });

  it('counts rate-limit hits in fixed windows, atomically under concurrency, and prunes old windows', async () => {
    const hits = await Promise.all(
      Array.from({ length: 30 }, () => store.throttle.hit('addr:x', T + 1, 60_000)),
    );
    const windowStart = T + 1 - ((T + 1) % 60_000);
    expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(hits[0]!.windowEndMs).toBe(windowStart + 60_000);
    expect(await store.throttle.hit('addr:x', windowStart + 60_000, 60_000)).toEqual({
      count: 1,
      windowEndMs: windowStart + 120_000,
    });
    await store.throttle.hit('addr:y', windowStart, 60_000);
    await store.throttle.prune(windowStart + 180_000, 1000, 60_000);
    expect((await store.throttle.hit('addr:y', windowStart, 60_000)).count).toBe(1);
  });

  it('counts a rate-limit hit and reads a config value in the same statement', async () => {
    expect(await store.throttle.hit('addr:z', T, 60_000, 'cap')).toEqual({
      count: 1,
      windowEndMs: T - (T % 60_000) + 60_000,
    });
    await store.putConfig('cap', '{"v":2}', T);
    const racing = await Promise.all(
      Array.from({ length: 10 }, () => store.throttle.hit('addr:z', T, 60_000, 'cap')),
    );
    expect(racing.map((h) => h.count).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 2),
    );
    expect(racing.every((h) => h.configJson === '{"v":2}')).toBe(true);
    expect(await store.throttle.hit('addr:z', T, 60_000)).not.toHaveProperty('configJson');
  });

  it('keeps the device inventory: insert, list, look up, lock and delete with its tokens', async () => {
    const devices = store.devices;
    expect(await devices.insert(deviceRow('a', 'tag-1'))).toBe(true);
    expect(await devices.insert(deviceRow('b', 'tag-1'))).toBe(false);
    expect(await devices.insert({ ...deviceRow('c', 'tag-1'), os_type: 'macos' })).toBe(true);
    expect(await devices.insert(deviceRow('d', 'tag-0'))).toBe(true);
    expect((await devices.list()).map((d) => d.id)).toEqual(['d', 'a', 'c']);
    expect((await devices.byAssetTag('tag-1')).map((d) => d.os_type)).toEqual(['linux', 'macos']);
    expect(await devices.get('a')).toMatchObject({ created_ms: T, locked: 0, enroll_status: 'not_enrolled' });
    expect(await devices.get('zz')).toBeUndefined();
    expect(await devices.setLock('a', true, 'stolen', T + 1)).toBe(true);
    expect(await devices.get('a')).toMatchObject({ locked: 1, lock_reason: 'stolen', updated_ms: T + 1 });
    expect(await devices.setLock('a', false, 'ignored', T + 2)).toBe(true);
    expect(await devices.get('a')).toMatchObject({ locked: 0, lock_reason: null });
    expect(await devices.setLock('zz', true, null, T)).toBe(false);
    await devices.insertToken('t', 'a', T, T + 1);
    expect(await devices.delete('a')).toBe(true);
    expect(await devices.delete('a')).toBe(false);
    expect(await devices.peekToken('t')).toBeUndefined();
  });

  it('enrolls a device once among racing enrollments and finds it by credential', async () => {
    await store.devices.insert(deviceRow('a'));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.devices.enroll('a', credential(String(i)), T + 1)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const enrolled = await store.devices.get('a');
    expect(enrolled).toMatchObject({ enroll_status: 'enrolled', owner: 'alice', enrolled_ms: T + 1 });
    expect((await store.devices.byCredential(enrolled!.credential_id!))?.id).toBe('a');
    expect(await store.devices.byCredential('none')).toBeUndefined();
  });

  it('spends a device enroll token once among 50 racing spends', async () => {
    await store.devices.insert(deviceRow('a'));
    await store.devices.insertToken('t', 'a', T, T + 60_000);
    expect(await store.devices.peekToken('t')).toEqual({ device_id: 'a', expires_ms: T + 60_000, used: 0 });
    const results = await Promise.all(Array.from({ length: 50 }, () => store.devices.spendToken('t')));
    expect(results.filter(Boolean)).toEqual([{ device_id: 'a', expires_ms: T + 60_000 }]);
    expect(await store.devices.spendToken('t')).toBeUndefined();
    expect((await store.devices.peekToken('t'))?.used).toBe(1);
    await store.devices.pruneTokens(T + 60_001);
    expect(await store.devices.peekToken('t')).toBeUndefined();
  });

  it('inserts each CA kind once among racing first starts, and keeps one super-admin serial per replica', async () => {
    const row = (kind: string, n: number) => ({
      kind,
      private_key: `kp-sealed:v1:${kind}-${n}`,
      certificate: kind === 'tls' ? `cert-${n}` : null,
      created_ms: T + n,
    });
    const inserted = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        store.insertAuthoritiesIfAbsent([row('ssh_user', n), row('tls', n)]),
      ),
    );
    expect(inserted.reduce((a, b) => a + b, 0)).toBe(2);
    const rows = await store.listAuthorities();
    expect(rows.map((r) => r.kind)).toEqual(['ssh_user', 'tls']);
    expect(typeof rows[0]?.created_ms).toBe('number');

    await store.putBuiltinAdmin('host:/a', 'a1', T, T + 1000);
    await store.putBuiltinAdmin('host:/b', 'b1', T, T + 1000);
    expect(await store.isBuiltinAdmin('a1', T + 10)).toBe(true);
    // A replica's next start replaces its serial; the other replica's stays.
    await store.putBuiltinAdmin('host:/a', 'a2', T + 10, T + 1010);
    expect(await store.isBuiltinAdmin('a1', T + 10)).toBe(false);
    expect(await store.isBuiltinAdmin('a2', T + 10)).toBe(true);
    expect(await store.isBuiltinAdmin('b1', T + 10)).toBe(true);
    // Expired serials pass no more, and the next start drops them.
    expect(await store.isBuiltinAdmin('b1', T + 1001)).toBe(false);
    await store.putBuiltinAdmin('host:/a', 'a3', T + 1005, T + 2000);
    expect(await store.isBuiltinAdmin('b1', T)).toBe(false);
  });

  it('spends an SSO request once by its state and its one-time code once, also when calls race', async () => {
    const sso = store.sso;
    const request = (id: string, expires = T + 300_000) => ({
      id,
      state_hash: `state-${id}`,
      connector: 'okta',
      nonce: `nonce-${id}`,
      pkce_verifier: `verifier-${id}`,
      client_redirect_url: 'http://127.0.0.1:4000/cb',
      keys_json: '{"tls":"pem"}',
      client_addr: '127.0.0.1',
      created_ms: T,
      expires_ms: expires,
    });
    await sso.insert({ ...request('r1'), device_json: '{"kind":"auth"}' });
    await sso.insert(request('old', T + 10));
    expect(await sso.get('r1')).toMatchObject({
      stage: 'started',
      code_hash: null,
      expires_ms: T + 300_000,
      device_json: '{"kind":"auth"}',
    });
    expect(await sso.get('old')).toMatchObject({ device_json: null });
    expect(await sso.findByStateHash('state-r1')).toMatchObject({ id: 'r1' });
    // An expired request's state spends nothing; a live one is spent by exactly one of many callbacks.
    expect(await sso.spendState('state-old', T + 10)).toBeUndefined();
    const spends = await Promise.all(Array.from({ length: 20 }, () => sso.spendState('state-r1', T + 1)));
    expect(spends.filter((row) => row !== undefined)).toHaveLength(1);
    expect(spends.find((row) => row !== undefined)).toMatchObject({
      id: 'r1',
      nonce: 'nonce-r1',
      stage: 'called-back',
    });
    // A code for the request, once; then found (not spent) before its expiry, and spent once.
    const grant = {
      codeHash: 'code-1',
      codeExpiresMs: T + 60_000,
      user: 'alice',
      identityJson: '{"roles":["x"]}',
    };
    expect(await sso.authorize('r1', grant)).toBe(true);
    expect(await sso.authorize('r1', { ...grant, codeHash: 'code-2' })).toBe(false);
    expect(await sso.authorize('old', grant)).toBe(false);
    expect(await sso.findAuthorized('r1', 'code-2', T + 2)).toBeUndefined();
    expect(await sso.findAuthorized('r1', 'code-1', T + 60_000)).toBeUndefined();
    expect(await sso.findAuthorized('r1', 'code-1', T + 2)).toMatchObject({
      user: 'alice',
      code_expires_ms: T + 60_000,
    });
    expect(await sso.redeem('r1', 'code-1', T + 60_000)).toBe(false);
    const redeems = await Promise.all(Array.from({ length: 20 }, () => sso.redeem('r1', 'code-1', T + 3)));
    expect(redeems.filter(Boolean)).toHaveLength(1);
    expect(await sso.findAuthorized('r1', 'code-1', T + 4)).toBeUndefined();
    expect(await sso.get('r1')).toMatchObject({ stage: 'redeemed' });
    await sso.prune(T + 11);
    expect(await sso.get('old')).toBeUndefined();
    expect(await sso.get('r1')).toBeDefined();
  });

  it("spends a web SSO request only with its browser's binding, once, and never issues it a code", async () => {
    const sso = store.sso;
    const request = (id: string) => ({
      id,
      state_hash: `state-${id}`,
      connector: 'okta',
      nonce: `nonce-${id}`,
      pkce_verifier: `verifier-${id}`,
      client_redirect_url: '/',
      keys_json: '{}',
      client_addr: '127.0.0.1',
      created_ms: T,
      expires_ms: T + 300_000,
    });
    await sso.insert({ ...request('w1'), kind: 'web', browser_binding_hash: 'binding-1' });
    await sso.insert(request('c1'));
    expect(await sso.get('w1')).toMatchObject({ kind: 'web', browser_binding_hash: 'binding-1' });
    expect(await sso.get('c1')).toMatchObject({ kind: 'cli', browser_binding_hash: null });
    // Another browser's binding, or none, spends nothing.
    expect(await sso.spendState('state-w1', T + 1, 'binding-2')).toBeUndefined();
    expect(await sso.spendState('state-w1', T + 1)).toBeUndefined();
    expect(await sso.get('w1')).toMatchObject({ stage: 'started' });
    const spends = await Promise.all(
      Array.from({ length: 10 }, () => sso.spendState('state-w1', T + 1, 'binding-1')),
    );
    expect(spends.filter((row) => row !== undefined)).toHaveLength(1);
    // A web request ends in a web session, once; it never gets a one-time code to redeem.
    const grant = { codeHash: 'code-w', codeExpiresMs: T + 60_000, user: 'ann', identityJson: '{}' };
    expect(await sso.authorize('w1', grant)).toBe(false);
    expect(await sso.signedIn('w1', { user: 'ann', identityJson: '{"roles":["a"]}' })).toBe(true);
    expect(await sso.signedIn('w1', { user: 'ann', identityJson: '{}' })).toBe(false);
    expect(await sso.get('w1')).toMatchObject({ stage: 'signed-in', user: 'ann', code_hash: null });
    // A CLI request needs no binding, and cannot end in a web session.
    expect(await sso.spendState('state-c1', T + 1, 'binding-1')).toMatchObject({ id: 'c1' });
    expect(await sso.signedIn('c1', { user: 'ann', identityJson: '{}' })).toBe(false);
  });

  it('creates and updates an SSO user of one connector and subject, never a local user or another', async () => {
    const sso = store.sso;
    expect(await sso.upsertSsoUser('ann', '{"roles":["a"]}', { connector: 'okta', subject: 's1' }, T)).toBe(
      true,
    );
    expect(await store.getUser('ann')).toMatchObject({
      spec_json: '{"roles":["a"]}',
      password_hash: null,
      sso_connector: 'okta',
      sso_subject: 's1',
    });
    expect(
      await sso.upsertSsoUser('ann', '{"roles":["b"]}', { connector: 'okta', subject: 's1' }, T + 1),
    ).toBe(true);
    expect(await store.getUser('ann')).toMatchObject({ spec_json: '{"roles":["b"]}', updated_ms: T + 1 });
    expect(
      await sso.upsertSsoUser('ann', '{"roles":["c"]}', { connector: 'entra', subject: 's1' }, T + 2),
    ).toBe(false);
    expect(
      await sso.upsertSsoUser('ann', '{"roles":["c"]}', { connector: 'okta', subject: 's2' }, T + 2),
    ).toBe(false);
    await store.insertUser('bea', user('bea'), T);
    expect(
      await sso.upsertSsoUser('bea', '{"roles":["c"]}', { connector: 'okta', subject: 's3' }, T + 2),
    ).toBe(false);
    expect(await store.getUser('ann')).toMatchObject({ spec_json: '{"roles":["b"]}', updated_ms: T + 1 });
    expect(await store.getUser('bea')).toMatchObject({
      spec_json: user('bea'),
      sso_connector: null,
      sso_subject: null,
    });
  });

  it('stores oidc connectors, the secret in its own column, kept by a replace that gives none', async () => {
    const connectors = store.connectors;
    const doc = (issuer: string) => JSON.stringify({ kind: 'oidc', spec: { issuer_url: issuer } });
    const sealed = (n: number) => `${SEALED_FAMILY}v1:secret-${n}`;
    expect(await connectors.insert('okta', doc('https://a'), sealed(1), T)).toBe(true);
    expect(await connectors.insert('okta', doc('https://b'), sealed(2), T + 1)).toBe(false);
    expect(await connectors.get('okta')).toEqual({
      name: 'okta',
      doc_json: doc('https://a'),
      client_secret: sealed(1),
      created_ms: T,
      updated_ms: T,
    });
    expect(await connectors.replace('okta', doc('https://b'), undefined, T + 2)).toBe(true);
    expect(await connectors.get('okta')).toMatchObject({
      doc_json: doc('https://b'),
      client_secret: sealed(1),
    });
    expect(await connectors.replace('okta', doc('https://c'), sealed(3), T + 3)).toBe(true);
    expect(await connectors.get('okta')).toMatchObject({ client_secret: sealed(3), updated_ms: T + 3 });
    expect(await connectors.replace('nobody', doc('https://x'), sealed(4), T + 3)).toBe(false);
    expect(await connectors.get('nobody')).toBeUndefined();
    expect(await connectors.insert('entra', doc('https://e'), sealed(5), T)).toBe(true);
    expect((await connectors.list()).map((row) => row.name)).toEqual(['entra', 'okta']);
    expect(await connectors.delete('okta')).toBe(true);
    expect(await connectors.delete('okta')).toBe(false);
    expect((await connectors.list()).map((row) => row.name)).toEqual(['entra']);
  });

  it('stores nodes, spends a single-use certificate for one connection only, and audits a connection once', async () => {
    const nodes = store.nodes;
    const doc = (addr: string) => JSON.stringify({ kind: 'node', metadata: { name: 'web' }, spec: { addr } });
    expect(
      await nodes.put('web', doc('10.0.0.1:22'), { replace: false, nowMs: T, identitySerial: 'aa' }),
    ).toBe(true);
    expect(await nodes.put('web', doc('10.0.0.2:22'), { replace: false, nowMs: T + 1 })).toBe(false);
    expect(await nodes.get('web')).toMatchObject({ doc_json: doc('10.0.0.1:22'), identity_serial: 'aa' });
    // Replaced without a new identity: the identity stays; with one, it changes.
    expect(await nodes.put('web', doc('10.0.0.2:22'), { replace: true, nowMs: T + 2 })).toBe(true);
    expect(await nodes.get('web')).toMatchObject({
      doc_json: doc('10.0.0.2:22'),
      identity_serial: 'aa',
      created_ms: T,
    });
    expect(
      await nodes.put('web', doc('10.0.0.2:22'), { replace: true, nowMs: T + 3, identitySerial: 'bb' }),
    ).toBe(true);
    expect((await nodes.get('web'))?.identity_serial).toBe('bb');
    expect(await nodes.put('db', doc('10.0.0.3:22'), { replace: false, nowMs: T })).toBe(true);
    expect((await nodes.list()).map((n) => n.name)).toEqual(['db', 'web']);
    expect(await nodes.count()).toBe(2);

    const row = {
      serial: '42',
      user: 'jerry',
      node: 'web',
      login: 'jerry',
      created_ms: T,
      expires_ms: T + 60_000,
    };
    await nodes.insertSessionCertificate(row);
    expect(await nodes.spendSessionCertificate('42', 'db', '1:1', T)).toBeUndefined(); // another node
    expect(await nodes.spendSessionCertificate('42', 'web', '1:1', T + 60_000)).toBeUndefined(); // expired
    expect(await nodes.getSessionCertificate('42')).toMatchObject({ connection: null, spent_ms: null });
    expect(await nodes.spendSessionCertificate('42', 'web', '100:5', T + 1)).toMatchObject({
      connection: '100:5',
      spent_ms: T + 1,
    });
    // sshd's second call for the same connection passes (first spend time kept); any other connection not.
    expect(await nodes.spendSessionCertificate('42', 'web', '100:5', T + 2)).toMatchObject({
      spent_ms: T + 1,
    });
    expect(await nodes.spendSessionCertificate('42', 'web', '100:6', T + 3)).toBeUndefined();
    expect(await nodes.spendSessionCertificate('42', 'web', '101:5', T + 3)).toBeUndefined();
    expect(await nodes.spendSessionCertificate('43', 'web', '100:5', T + 3)).toBeUndefined();
    // Racing connections: exactly one wins.
    await nodes.insertSessionCertificate({ ...row, serial: '44', created_ms: T + 10 });
    const raced = await Promise.all(
      ['7:1', '8:1', '9:1', '10:1'].map((connection) =>
        nodes.spendSessionCertificate('44', 'web', connection, T + 11),
      ),
    );
    expect(raced.filter(Boolean)).toHaveLength(1);
    // Issuing drops certificates past their end.
    await nodes.insertSessionCertificate({
      ...row,
      serial: '45',
      created_ms: T + 61_000,
      expires_ms: T + 121_000,
    });
    expect(await nodes.getSessionCertificate('42')).toBeUndefined();
    // An allowed connection is first once (sshd's second call is not), per node, and forgotten on prune.
    expect(await nodes.firstAllowedCall('web', '100:5', T)).toBe(true);
    expect(await nodes.firstAllowedCall('web', '100:5', T + 1)).toBe(false);
    expect(await nodes.firstAllowedCall('web', '100:6', T + 1)).toBe(true);
    expect(await nodes.firstAllowedCall('db', '100:5', T + 1)).toBe(true);
    await nodes.pruneConnections(T + 1);
    expect(await nodes.firstAllowedCall('web', '100:5', T + 2)).toBe(true);
    expect(await nodes.firstAllowedCall('web', '100:6', T + 2)).toBe(false);
    expect(await nodes.delete('db')).toBe(true);
    expect(await nodes.delete('db')).toBe(false);
  });

  it('keeps web sessions by token hash with their user, unexpired only, and ends one or all of a user', async () => {
    const sessions = store.webSessions;
    await store.insertUser('alice', user('alice'), T);
    await store.insertUser('bob', user('bob'), T);
    await sessions.insert(webSession('a1'));
    await sessions.insert({
      ...webSession('a2'),
      device_id: 'dev-1',
      device_asset_tag: 'tag',
      device_trusted_ms: T,
    });
    await sessions.insert(webSession('b1', 'bob', T + 10));
    // The token hash is unique: a second row with the same hash is refused.
    await expect(sessions.insert({ ...webSession('a3'), token_hash: 'hash-a1' })).rejects.toThrow();
    const found = await sessions.find('hash-a1', T);
    expect(found?.session).toMatchObject({
      id: 'a1',
      user: 'alice',
      expires_ms: T + 60_000,
      device_id: null,
    });
    expect(found?.user).toMatchObject({ name: 'alice', locked_until_ms: null });
    expect((await sessions.find('hash-a2', T))?.session).toMatchObject({
      device_id: 'dev-1',
      device_trusted_ms: T,
    });
    // An untrusted session is trusted once, by one device; a trusted or expired one is left alone.
    const racing = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        sessions.trust('a1', { deviceId: `dev-${i}`, assetTag: 'tag' }, T + 1),
      ),
    );
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect(await sessions.trust('a2', { deviceId: 'dev-x', assetTag: 'x' }, T + 1)).toBe(false);
    expect(await sessions.trust('b1', { deviceId: 'dev-x', assetTag: 'x' }, T + 10)).toBe(false);
    expect((await sessions.find('hash-a1', T + 1))?.session).toMatchObject({
      device_asset_tag: 'tag',
      device_trusted_ms: T + 1,
    });
    // The user's current row comes with it: a lock shows at the next read.
    await store.setLock('alice', T + 1000, 'stolen laptop', T);
    expect((await sessions.find('hash-a1', T))?.user?.locked_until_ms).toBe(T + 1000);
    // Expired is not found, and pruned.
    expect(await sessions.find('hash-b1', T + 10)).toBeUndefined();
    expect(await sessions.find('hash-b1', T + 9)).toBeDefined();
    await sessions.prune(T + 10);
    expect(await sessions.listForUser('bob')).toEqual([]);
    // A session whose user is gone comes back without a user.
    await sessions.insert(webSession('c1', 'carol'));
    expect((await sessions.find('hash-c1', T))?.user).toBeUndefined();
    expect((await sessions.listForUser('alice')).map((s) => s.id)).toEqual(['a1', 'a2']);
    expect(await sessions.delete('a1')).toBe(true);
    expect(await sessions.delete('a1')).toBe(false);
    expect(await sessions.deleteForUser('alice')).toBe(1);
    expect(await sessions.find('hash-a2', T)).toBeUndefined();
  });

  it('spends a web approval token once among racing spends, then its confirmation once, for its session only', async () => {
    const approvals = store.webApprovals;
    await store.insertUser('alice', user('alice'), T);
    const approval = (id: string, expires = T + 300_000) => ({
      id,
      web_session_id: 'ws-1',
      user: 'alice',
      token_hash: `th-${id}`,
      created_ms: T,
      expires_ms: expires,
      token_used: 0,
      confirm_used: 0,
    });
    await approvals.insert(approval('r1'));
    await approvals.insert(approval('r2', T + 10));
    expect(await approvals.get('r1')).toMatchObject({ token_used: 0, confirm_hash: null, device_id: null });
    const grant = (n: number) => ({
      confirmHash: `ch-${n}`,
      confirmExpiresMs: T + 120_000,
      deviceId: `dev-${n}`,
      assetTag: 'tag',
    });
    // A wrong hash or an expired request spends nothing.
    expect(await approvals.spendToken('r1', 'th-other', T + 1, grant(0))).toBeUndefined();
    expect(await approvals.spendToken('r2', 'th-r2', T + 10, grant(0))).toBeUndefined();
    const racing = await Promise.all(
      Array.from({ length: 20 }, (_, i) => approvals.spendToken('r1', 'th-r1', T + 1, grant(i))),
    );
    expect(racing.filter((s) => s === 'ws-1')).toHaveLength(1);
    expect(racing.filter((s) => s !== undefined)).toHaveLength(1);
    const spent = await approvals.get('r1');
    expect(spent?.token_used).toBe(1);
    const winner = Number(spent?.device_id?.slice(4));
    expect(spent?.confirm_hash).toBe(`ch-${winner}`);
    // The confirmation: another session, a wrong hash or too late spend nothing; then one of many.
    expect(await approvals.spendConfirmation('r1', `ch-${winner}`, 'ws-2', T + 2)).toBeUndefined();
    expect(await approvals.spendConfirmation('r1', 'ch-x', 'ws-1', T + 2)).toBeUndefined();
    expect(await approvals.spendConfirmation('r1', `ch-${winner}`, 'ws-1', T + 120_000)).toBeUndefined();
    const confirmations = await Promise.all(
      Array.from({ length: 20 }, () => approvals.spendConfirmation('r1', `ch-${winner}`, 'ws-1', T + 2)),
    );
    expect(confirmations.filter(Boolean)).toEqual([{ deviceId: `dev-${winner}`, assetTag: 'tag' }]);
    // Pruned once neither token can be spent; gone with the user.
    await approvals.prune(T + 10);
    expect(await approvals.get('r2')).toBeUndefined();
    expect(await approvals.get('r1')).toBeDefined();
    await approvals.prune(T + 300_000);
    expect(await approvals.get('r1')).toBeUndefined();
    await approvals.insert(approval('r3'));
    await store.deleteUser('alice');
    expect(await approvals.get('r3')).toBeUndefined();
  });

  it('called every Store, ThrottleStore and DeviceStore method', () => {
    const expected = [
      ...methodsOf(WebSessionStore.prototype, 'WebSessionStore'),
      ...methodsOf(WebApprovalStore.prototype, 'WebApprovalStore'),
      ...methodsOf(NodeStore.prototype, 'NodeStore'),
      ...methodsOf(ConnectorStore.prototype, 'ConnectorStore'),
      ...methodsOf(SsoRequestStore.prototype, 'SsoRequestStore'),
      ...methodsOf(Store.prototype, 'Store'),
      ...methodsOf(ThrottleStore.prototype, 'ThrottleStore'),
      ...methodsOf(LoginStore.prototype, 'LoginStore'),
      // DeviceStore's own transaction is private, used by delete().
      ...methodsOf(DeviceStore.prototype, 'DeviceStore', ['transaction']),
    ];
    expect(expected.filter((m) => !seen.has(m))).toEqual([]);
  });
});
