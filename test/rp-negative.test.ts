// The WebAuthn relying party in keyport-auth (issue 3, "keyport-auth: the relying party"), through a real
// keyport-auth process and the lab soft key. The soft key is driven by the spec-written raw CTAPHID client
// of its own tests (sharing no code with client/hardware/fido), and the WebAuthn JSON is built here, so a
// test can send what a hostile or broken client would: another origin, another RP's authenticator data,
// no user presence, no user verification, an old challenge, another user's credential, `none`
// attestation. Every refusal is asserted by its typed error code.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode } from 'cbor2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { connectAsAdmin, openClusterDb, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { createAuthorities } from '../lab/security-key/attestation-ca';
import { getPinToken, plain, RawCtaphid, tokenParam } from '../lab/security-key/raw-client.test-support';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const RP_ID = 'localhost';
const ORIGIN = 'https://localhost';
const PIN = '4321';
const PERMISSION_MC = 0x01;
const PERMISSION_GA = 0x02;
const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const fromB64url = (s: string): Buffer => Buffer.from(s, 'base64url');

const BASE_CAP = {
  type: 'local',
  second_factors: ['webauthn', 'otp'],
  webauthn: { rp_id: RP_ID },
  allow_passwordless: true,
};

interface Key {
  soft: SoftKey;
  client: RawCtaphid;
  cid: number;
  pin?: string;
}

let cluster: LabCluster;
let dir: string;
let caPem: string;
let admin: ClusterApi;
let anonymous: ClusterApi;
const keys: Key[] = [];
const apis: ClusterApi[] = [];

async function newKey(name: string, pin?: string): Promise<Key> {
  const soft = await startSoftKey({
    socketPath: join(dir, `${name}.sock`),
    statePath: join(dir, `${name}.json`),
    touch: 'auto',
    pin,
  });
  const client = await RawCtaphid.connect(soft.socketPath);
  const key = { soft, client, cid: await client.init(), pin };
  keys.push(key);
  return key;
}

function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string) {
  const json = Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  return { json, hash: createHash('sha256').update(json).digest() };
}

async function pinToken(key: Key, permissions: number): Promise<Buffer> {
  const r = await getPinToken(key.client, key.cid, key.pin ?? '', permissions, RP_ID);
  if (r.status !== 0 || !r.token) throw new Error(`no PIN token: 0x${r.status.toString(16)}`);
  return r.token;
}

interface CreationOptions {
  challenge: string;
  rp: { id: string; name: string };
  user: { id: string; name: string; displayName: string };
  pubKeyCredParams: { alg: number; type: string }[];
  excludeCredentials?: { id: string }[];
  attestation?: string;
  authenticatorSelection?: { residentKey?: string; userVerification?: string };
}

/** What a browser does with PublicKeyCredentialCreationOptionsJSON: CTAP2 MakeCredential, then JSON. */
async function makeCredential(
  key: Key,
  optionsJson: string,
  opts: { origin?: string; noneAttestation?: boolean } = {},
): Promise<string> {
  const options = JSON.parse(optionsJson) as CreationOptions;
  const rk = options.authenticatorSelection?.residentKey === 'required';
  const cd = clientData('webauthn.create', options.challenge, opts.origin ?? ORIGIN);
  const params = new Map<number, unknown>([
    [1, cd.hash],
    [
      2,
      new Map([
        ['id', options.rp.id],
        ['name', options.rp.name],
      ]),
    ],
    [
      3,
      new Map<string, unknown>([
        ['id', fromB64url(options.user.id)],
        ['name', options.user.name],
        ['displayName', options.user.displayName || options.user.name],
      ]),
    ],
    [
      4,
      options.pubKeyCredParams.map(
        (p) =>
          new Map<string, unknown>([
            ['alg', p.alg],
            ['type', p.type],
          ]),
      ),
    ],
  ]);
  if (options.excludeCredentials?.length) {
    params.set(
      5,
      options.excludeCredentials.map(
        (c) =>
          new Map<string, unknown>([
            ['id', fromB64url(c.id)],
            ['type', 'public-key'],
          ]),
      ),
    );
  }
  if (rk) params.set(7, new Map([['rk', true]]));
  if (key.pin) {
    params.set(8, tokenParam(await pinToken(key, PERMISSION_MC), cd.hash));
    params.set(9, 2);
  }
  const r = await key.client.cbor(key.cid, 0x01, params);
  if (r.status !== 0 || !r.body) throw new Error(`makeCredential failed: 0x${r.status.toString(16)}`);
  const authData = r.body.get(2) as Uint8Array;
  const idLength = (authData[53]! << 8) | authData[54]!;
  const credentialId = authData.subarray(55, 55 + idLength);
  // `none` is what a client sends when it strips the attestation (or a key that has none).
  const fmt = opts.noneAttestation ? 'none' : r.body.get(1);
  const attStmt = opts.noneAttestation ? new Map() : r.body.get(3);
  const attestationObject = encode(
    plain(
      new Map<string, unknown>([
        ['fmt', fmt],
        ['attStmt', attStmt],
        ['authData', authData],
      ]),
    ),
  );
  return JSON.stringify({
    id: b64url(credentialId),
    rawId: b64url(credentialId),
    type: 'public-key',
    response: {
      clientDataJSON: b64url(cd.json),
      attestationObject: b64url(attestationObject),
      transports: ['usb'],
    },
    clientExtensionResults: { credProps: { rk } },
    authenticatorAttachment: 'cross-platform',
  });
}

interface RequestOptions {
  challenge: string;
  rpId: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

/** What a browser does with PublicKeyCredentialRequestOptionsJSON: CTAP2 GetAssertion, then JSON. */
async function getAssertion(
  key: Key,
  optionsJson: string,
  opts: {
    origin?: string;
    up?: boolean;
    pin?: boolean;
    /** Replaces the rpIdHash of the authenticator data (what a key answering for another RP sends). */
    rpIdHashOf?: string;
    allowCredentials?: { id: string }[];
  } = {},
): Promise<string> {
  const options = JSON.parse(optionsJson) as RequestOptions;
  const cd = clientData('webauthn.get', options.challenge, opts.origin ?? ORIGIN);
  const params = new Map<number, unknown>([
    [1, options.rpId],
    [2, cd.hash],
  ]);
  const allow = opts.allowCredentials ?? options.allowCredentials ?? [];
  if (allow.length > 0) {
    params.set(
      3,
      allow.map(
        (c) =>
          new Map<string, unknown>([
            ['id', fromB64url(c.id)],
            ['type', 'public-key'],
          ]),
      ),
    );
  }
  if (opts.up === false) params.set(5, new Map([['up', false]]));
  if (opts.pin) {
    params.set(6, tokenParam(await pinToken(key, PERMISSION_GA), cd.hash));
    params.set(7, 2);
  }
  const r = await key.client.cbor(key.cid, 0x02, params);
  if (r.status !== 0 || !r.body) throw new Error(`getAssertion failed: 0x${r.status.toString(16)}`);
  const credential = r.body.get(1) as Map<string, Uint8Array>;
  const user = r.body.get(4) as Map<string, unknown> | undefined;
  const authData = Buffer.from(r.body.get(2) as Uint8Array);
  if (opts.rpIdHashOf) createHash('sha256').update(opts.rpIdHashOf).digest().copy(authData, 0);
  const id = b64url(credential.get('id')!);
  return JSON.stringify({
    id,
    rawId: id,
    type: 'public-key',
    response: {
      clientDataJSON: b64url(cd.json),
      authenticatorData: b64url(authData),
      signature: b64url(r.body.get(3) as Uint8Array),
      ...(user ? { userHandle: b64url(user.get('id') as Uint8Array) } : {}),
    },
    clientExtensionResults: {},
  });
}

async function setCap(spec: Record<string, unknown>): Promise<void> {
  await admin.admin.createResources({
    documentsJson: [
      JSON.stringify({
        kind: 'cluster_auth_preference',
        version: 'v2',
        metadata: { name: 'cluster-auth-preference' },
        spec,
      }),
    ],
    force: false,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KeyportError) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

function sessionKey() {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Login step two; returns the user API connected with the issued certificate. */
async function finishLogin(mfaResponse: MFAAuthenticateResponse): Promise<{ user: string; api: ClusterApi }> {
  const key = sessionKey();
  const response = await anonymous.auth.login({
    mfaResponse,
    sshPublicKey: '',
    tlsPublicKey: key.publicPem,
    ttlSeconds: 0,
  });
  const api = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem,
    caPin: cluster.caPin,
    clientKeyPem: key.privatePem,
    clientCertPem: response.tlsCertificate,
  });
  apis.push(api);
  return { user: response.user, api };
}

function loginChallenge(user: string): Promise<MFAAuthenticateChallenge> {
  return anonymous.auth.createAuthenticateChallenge({
    user,
    password: `${user}-password-123`,
    scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
  });
}

async function loginWithKey(user: string, key: Key): Promise<ClusterApi> {
  const challenge = await loginChallenge(user);
  const json = await getAssertion(key, challenge.webauthnRequestOptionsJson);
  return (
    await finishLogin({
      challengeId: challenge.challengeId,
      response: { $case: 'webauthnJson', value: json },
    })
  ).api;
}

/** Creates the user and signs up with `key` as the first device (issue 3: signup registers a key). */
async function signUpWithKey(user: string, key: Key): Promise<void> {
  const { signupToken } = await admin.admin.createUser({ name: user, roles: ['access'], traits: {} });
  const started = await anonymous.auth.startSignup({
    token: signupToken,
    deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
    passwordless: false,
    deviceCredentialId: '',
  });
  const register = started.registerChallenge!;
  expect(register.type).toBe(MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN);
  const json = await makeCredential(key, register.webauthnCreationOptionsJson);
  await anonymous.auth.completeSignup({
    token: signupToken,
    password: `${user}-password-123`,
    newDevice: {
      challengeId: register.challengeId,
      deviceName: 'yubikey',
      response: { $case: 'webauthnJson', value: json },
    },
  });
}

/** MANAGE_DEVICES challenge answered by `key`. */
async function manageDevicesAnswer(api: ClusterApi, key: Key): Promise<MFAAuthenticateResponse> {
  const challenge = await api.user.createAuthenticateChallenge({
    scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
    adminActions: [],
  });
  const json = await getAssertion(key, challenge.webauthnRequestOptionsJson);
  return { challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } };
}

/** keyport mfa add --type webauthn: existing key, register challenge, new key. */
async function addKey(
  api: ClusterApi,
  existing: Key,
  key: Key,
  name: string,
  opts: { passwordless?: boolean; noneAttestation?: boolean } = {},
) {
  const register = await api.user.createRegisterChallenge({
    existingMfaResponse: await manageDevicesAnswer(api, existing),
    deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
    passwordless: opts.passwordless ?? false,
  });
  const json = await makeCredential(key, register.webauthnCreationOptionsJson, opts);
  return api.user.addMfaDevice({
    newDevice: {
      challengeId: register.challengeId,
      deviceName: name,
      response: { $case: 'webauthnJson', value: json },
    },
  });
}

let alice: ClusterApi;
let aliceKey: Key;
let aliceKey2: Key;
let bobKey: Key;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kp-rp-'));
  cluster = await startLabCluster({
    clusterName: 'rp',
    configYaml: [
      'auth_service:',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn, otp]',
      '    webauthn:',
      `      rp_id: ${RP_ID}`,
      '',
    ].join('\n'),
  });
  caPem = (
    JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as { caCertPem: string }
  ).caCertPem;
  admin = await connectAsAdmin(cluster);
  anonymous = connectCluster({ address: parseClusterAddress(cluster.address), caPem, caPin: cluster.caPin });
  aliceKey = await newKey('alice');
  aliceKey2 = await newKey('alice2', PIN);
  bobKey = await newKey('bob');
  await signUpWithKey('alice', aliceKey);
  await signUpWithKey('bob', bobKey);
  alice = await loginWithKey('alice', aliceKey);
  await addKey(alice, aliceKey, aliceKey2, 'passkey', { passwordless: true });
});

afterAll(async () => {
  for (const api of apis) api.close();
  anonymous?.close();
  admin?.close();
  for (const key of keys) {
    key.client.close();
    await key.soft.stop();
  }
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the relying party accepts', () => {
  it('signup with a key, login with password + key, and lists the devices with the passkey marked', async () => {
    const api = await loginWithKey('alice', aliceKey);
    const { devices } = await api.user.listMfaDevices({});
    expect(devices.map((d) => [d.name, d.type, d.passkey])).toEqual([
      ['yubikey', MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN, false],
      ['passkey', MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN, true],
    ]);
    const status = await api.user.getStatus({});
    expect(status.mfaVerified).toBe(true);
  });

  it('passwordless login with the PIN: no user name, the user handle names the user', async () => {
    const challenge = await anonymous.auth.createAuthenticateChallenge({
      user: '',
      password: '',
      scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
    });
    const options = JSON.parse(challenge.webauthnRequestOptionsJson) as RequestOptions;
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.userVerification).toBe('required');
    // One minute for passwordless.
    expect(challenge.expiresMs - Date.now()).toBeLessThanOrEqual(60_000);
    const json = await getAssertion(aliceKey2, challenge.webauthnRequestOptionsJson, { pin: true });
    const { user } = await finishLogin({
      challengeId: challenge.challengeId,
      response: { $case: 'webauthnJson', value: json },
    });
    expect(user).toBe('alice');
  });

  it('excludes registered credentials and refuses a duplicate device name', async () => {
    const register = await alice.user.createRegisterChallenge({
      existingMfaResponse: await manageDevicesAnswer(alice, aliceKey),
      deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
      passwordless: false,
    });
    const options = JSON.parse(register.webauthnCreationOptionsJson) as CreationOptions;
    expect(options.excludeCredentials?.length).toBe(2);
    expect(options.attestation).toBe('none');
    const other = await newKey('alice3');
    expect(await codeOf(addKey(alice, aliceKey, other, 'yubikey'))).toBe('ALREADY_EXISTS');
  });
});

describe('the relying party refuses', () => {
  it('an assertion made for another site (origin)', async () => {
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson, {
      origin: 'https://evil.example',
    });
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('MFA_FAILED');
  });

  it('authenticator data of another relying party (rpIdHash)', async () => {
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson, {
      rpIdHashOf: 'evil.example',
    });
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('MFA_FAILED');
  });

  it('an assertion without user presence (UP not set)', async () => {
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson, { up: false });
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('MFA_FAILED');
  });

  it('a passwordless assertion without user verification (no PIN)', async () => {
    const challenge = await anonymous.auth.createAuthenticateChallenge({
      user: '',
      password: '',
      scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
    });
    const json = await getAssertion(aliceKey2, challenge.webauthnRequestOptionsJson, { pin: false });
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('MFA_FAILED');
  });

  it('a replayed challenge', async () => {
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson);
    const answer: MFAAuthenticateResponse = {
      challengeId: challenge.challengeId,
      response: { $case: 'webauthnJson', value: json },
    };
    await finishLogin(answer);
    expect(await codeOf(finishLogin(answer))).toBe('EXPIRED');
  });

  it('an expired challenge', async () => {
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson);
    // Five minutes are too long to wait in a test: the challenge's expiry is moved into the past in the
    // cluster's own database, which is what time passing does to the row.
    const db = openClusterDb(cluster, { readonly: false });
    try {
      db.prepare('UPDATE challenges SET expires_ms = ? WHERE id = ?').run(
        Date.now() - 1,
        challenge.challengeId,
      );
    } finally {
      db.close();
    }
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('EXPIRED');
  });

  it('a challenge of another scope, both ways', async () => {
    // A MANAGE_DEVICES answer is no login.
    const manage = await manageDevicesAnswer(alice, aliceKey);
    expect(await codeOf(finishLogin(manage))).toBe('ACCESS_DENIED');
    // A LOGIN answer does not unlock device management.
    const challenge = await loginChallenge('alice');
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson);
    expect(
      await codeOf(
        alice.user.createRegisterChallenge({
          existingMfaResponse: {
            challengeId: challenge.challengeId,
            response: { $case: 'webauthnJson', value: json },
          },
          deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
          passwordless: false,
        }),
      ),
    ).toBe('ACCESS_DENIED');
  });

  it("a credential of another user (alice's key answering bob's challenge)", async () => {
    const challenge = await loginChallenge('bob');
    const aliceCredential = (
      JSON.parse((await loginChallenge('alice')).webauthnRequestOptionsJson) as RequestOptions
    ).allowCredentials!;
    const json = await getAssertion(aliceKey, challenge.webauthnRequestOptionsJson, {
      allowCredentials: aliceCredential,
    });
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('ACCESS_DENIED');
  });

  it("a passkey's assertion whose user handle (not signed) names another user, or no user; nothing is stored", async () => {
    const read = () => {
      const db = openClusterDb(cluster);
      try {
        return {
          bobsHandle: (
            db.prepare("SELECT webauthn_user_handle AS h FROM users WHERE name = 'bob'").get() as {
              h: string;
            }
          ).h,
          devices: db
            .prepare('SELECT id, webauthn_sign_count, last_used_ms FROM mfa_devices ORDER BY id')
            .all(),
        };
      } finally {
        db.close();
      }
    };
    const before = read();
    expect(before.bobsHandle).toBeTruthy();
    for (const handle of [before.bobsHandle, b64url(Buffer.from('nobody-at-all'))]) {
      const challenge = await anonymous.auth.createAuthenticateChallenge({
        user: '',
        password: '',
        scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
      });
      const assertion = JSON.parse(
        await getAssertion(aliceKey2, challenge.webauthnRequestOptionsJson, { pin: true }),
      ) as { response: { userHandle?: string } };
      expect(assertion.response.userHandle).toBeTruthy();
      assertion.response.userHandle = handle;
      expect(
        await codeOf(
          finishLogin({
            challengeId: challenge.challengeId,
            response: { $case: 'webauthnJson', value: JSON.stringify(assertion) },
          }),
        ),
      ).toBe('ACCESS_DENIED');
    }
    expect(read().devices).toEqual(before.devices);
  });

  describe('attestation, when the cluster lists attestation CAs', () => {
    it('accepts a key whose attestation chains to an allowed CA (the CA is the trust anchor)', async () => {
      // Each soft key's state holds its own lab attestation CA.
      const key = await newKey('allowed');
      await setCap({
        ...BASE_CAP,
        webauthn: { rp_id: RP_ID, attestation_allowed_cas: [key.soft.attestationRootPem] },
      });
      const register = await alice.user.createRegisterChallenge({
        existingMfaResponse: await manageDevicesAnswer(alice, aliceKey),
        deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
        passwordless: false,
      });
      expect((JSON.parse(register.webauthnCreationOptionsJson) as CreationOptions).attestation).toBe(
        'direct',
      );
      const device = await alice.user.addMfaDevice({
        newDevice: {
          challengeId: register.challengeId,
          deviceName: 'allowed',
          response: {
            $case: 'webauthnJson',
            value: await makeCredential(key, register.webauthnCreationOptionsJson),
          },
        },
      });
      expect(device.name).toBe('allowed');
    });

    it('refuses a key whose attestation CA is not in attestation_allowed_cas', async () => {
      const stranger = await createAuthorities();
      await setCap({
        ...BASE_CAP,
        webauthn: { rp_id: RP_ID, attestation_allowed_cas: [stranger.root.certPem] },
      });
      expect(await codeOf(addKey(alice, aliceKey, await newKey('not-allowed'), 'not-allowed'))).toBe(
        'ACCESS_DENIED',
      );
    });

    it('refuses a key whose attestation CA is in attestation_denied_cas', async () => {
      const key = await newKey('denied');
      await setCap({
        ...BASE_CAP,
        webauthn: { rp_id: RP_ID, attestation_denied_cas: [key.soft.attestationRootPem] },
      });
      expect(await codeOf(addKey(alice, aliceKey, key, 'denied'))).toBe('ACCESS_DENIED');
      // The same CA no longer denied: the key is accepted (what refused it was the denied CA).
      await setCap({
        ...BASE_CAP,
        webauthn: { rp_id: RP_ID, attestation_denied_cas: [(await createAuthorities()).root.certPem] },
      });
      expect((await addKey(alice, aliceKey, key, 'not-denied')).name).toBe('not-denied');
    });

    it('refuses `none` attestation', async () => {
      const key = await newKey('none');
      await setCap({
        ...BASE_CAP,
        webauthn: { rp_id: RP_ID, attestation_allowed_cas: [key.soft.attestationRootPem] },
      });
      expect(await codeOf(addKey(alice, aliceKey, key, 'none', { noneAttestation: true }))).toBe(
        'ACCESS_DENIED',
      );
      await setCap(BASE_CAP);
    });
  });

  it('a sign counter that did not rise (a cloned key), audited as mfa.counter_regression', async () => {
    // A clone would answer with a counter at or below what the cluster saw last; the stored counter is
    // raised in the database to stand for the original key's later use.
    const db = openClusterDb(cluster, { readonly: false });
    try {
      db.prepare("UPDATE mfa_devices SET webauthn_sign_count = 1000000 WHERE user = 'bob'").run();
    } finally {
      db.close();
    }
    const challenge = await loginChallenge('bob');
    const json = await getAssertion(bobKey, challenge.webauthnRequestOptionsJson);
    expect(
      await codeOf(
        finishLogin({ challengeId: challenge.challengeId, response: { $case: 'webauthnJson', value: json } }),
      ),
    ).toBe('MFA_FAILED');
    const audit = await admin.admin.listAuditEvents({
      sinceMs: 0,
      type: 'mfa.counter_regression',
      limit: 10,
    });
    expect(audit.events.map((e) => [e.actor, e.success])).toEqual([['bob', false]]);
    const db2 = openClusterDb(cluster, { readonly: false });
    try {
      db2.prepare("UPDATE mfa_devices SET webauthn_sign_count = 0 WHERE user = 'bob'").run();
    } finally {
      db2.close();
    }
  });

  it('passwordless when the cluster disables it', async () => {
    // A challenge issued while it was allowed is refused too once it is disabled.
    const early = await anonymous.auth.createAuthenticateChallenge({
      user: '',
      password: '',
      scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
    });
    const json = await getAssertion(aliceKey2, early.webauthnRequestOptionsJson, { pin: true });
    await setCap({ ...BASE_CAP, allow_passwordless: false });
    try {
      expect(
        await codeOf(
          anonymous.auth.createAuthenticateChallenge({
            user: '',
            password: '',
            scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
          }),
        ),
      ).toBe('PASSWORDLESS_DISABLED');
      expect(
        await codeOf(
          finishLogin({ challengeId: early.challengeId, response: { $case: 'webauthnJson', value: json } }),
        ),
      ).toBe('PASSWORDLESS_DISABLED');
    } finally {
      await setCap(BASE_CAP);
    }
  });

  it('removing the last device while a second factor is required; removing another one works', async () => {
    const api = await loginWithKey('bob', bobKey);
    expect(
      await codeOf(
        api.user.deleteMfaDevice({
          name: 'yubikey',
          existingMfaResponse: await manageDevicesAnswer(api, bobKey),
        }),
      ),
    ).toBe('PRECONDITION_FAILED');
    const second = await newKey('bob2');
    await addKey(api, bobKey, second, 'spare');
    await api.user.deleteMfaDevice({
      name: 'spare',
      existingMfaResponse: await manageDevicesAnswer(api, bobKey),
    });
    const { devices } = await api.user.listMfaDevices({});
    expect(devices.map((d) => d.name)).toEqual(['yubikey']);
    const audit = await admin.admin.listAuditEvents({ sinceMs: 0, type: 'mfa.delete', limit: 10 });
    expect(audit.events.some((e) => e.success && e.actor === 'bob')).toBe(true);
  });
});

// decode is used to check the attestation object the builder sends, keeping the builder honest.
it('the builder sends a packed attestation with an x5c chain', async () => {
  const key = await newKey('shape');
  const options = JSON.stringify({
    challenge: b64url(Buffer.alloc(32, 1)),
    rp: { id: RP_ID, name: 'x' },
    user: { id: b64url(Buffer.alloc(16, 2)), name: 'x', displayName: 'x' },
    pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
  });
  const json = JSON.parse(await makeCredential(key, options)) as { response: { attestationObject: string } };
  const object = decode(fromB64url(json.response.attestationObject), { preferMap: true }) as Map<
    string,
    unknown
  >;
  expect(object.get('fmt')).toBe('packed');
  expect(((object.get('attStmt') as Map<string, unknown>).get('x5c') as unknown[]).length).toBeGreaterThan(0);
});
