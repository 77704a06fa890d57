// Device trust refusals, against a real keyport-auth and two real swtpm TPMs. Every check the enrollment
// and authentication ceremonies make gets an input that violates it; each refusal has its code, and the
// inventory and the tokens are exactly as they were.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTpmtPublic, parseTpmtPublic, TPMA_OBJECT } from '../auth/tpm/structures';
import { totpCode } from '../auth/totp';
import type { ClusterApi } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { TrustedDevice } from '../client/device-trust/device';
import { enrollThisDevice, thisDeviceStatus } from '../client/device-trust/enroll';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { connectAsProfile } from '../client/session';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import type { DeviceData } from '../proto/gen/keyport/v1/device';
import { KeyportError } from '../proto/errors';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectAsAdmin, openClusterDb, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

let lab: LabCluster;
let clock: LabClock;
let tpmA: LabTpm;
let tpmB: LabTpm;
let home: string;
let person: SignedUpUser;
let profile: Profile;
let api: ClusterApi;
let admin: ClusterApi;
let deviceA: TrustedDevice;
let deviceB: TrustedDevice;
let dataA: DeviceData;
const profiles = () => new ProfileStore(home);
const envA = (tag = 'NEG-A') => ({ ...tpmA.env, KEYPORT_DEVICE_ASSET_TAG: tag });

/** The inventory and the tokens, to compare before and after a refusal. */
function stored(): unknown {
  const db = openClusterDb(lab);
  const devices = db.prepare('SELECT * FROM trusted_devices ORDER BY id').all();
  const tokens = db.prepare('SELECT * FROM device_enroll_tokens ORDER BY token_hash').all();
  db.close();
  return { devices, tokens };
}

async function refusal(promise: Promise<unknown>): Promise<KeyportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

async function register(assetTag: string): Promise<string> {
  await admin.devices.addDevice({ osType: 'linux', assetTag });
  return (await admin.devices.createDeviceEnrollToken({ device: assetTag, ttlSeconds: 0 })).token;
}

async function signIn(device: false | { env: Record<string, string> }): Promise<Profile> {
  const signedIn = await loginWithPassword({
    profiles: profiles(),
    address: parseClusterAddress(lab.address),
    user: person.user,
    keystore: 'file',
    device,
    prompts: {
      confirmCaPin: async () => false,
      password: async () => person.password,
      otpCode: async () => totpCode(person.totpSecret, clock.now() + 30_000),
    },
  });
  clock.advance(60_000);
  return signedIn;
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-dt-neg-'));
  clock = createLabClock();
  [tpmA, tpmB] = await Promise.all([startLabTpm(), startLabTpm()]);
  lab = await startLabCluster({
    clusterName: 'dt-negative',
    env: clock.env,
    configYaml:
      'auth_service:\n  authentication:\n    type: local\n    second_factor: otp\n    device_trust:\n      mode: optional\n',
  });
  person = await signUpUserInProcess(lab, home, 'nell', ['access']);
  profile = await signIn(false);
  api = await connectAsProfile(profiles(), profile);
  admin = await connectAsAdmin(lab);
  deviceA = await TrustedDevice.open({ env: envA() });
  deviceB = await TrustedDevice.open({ env: { ...tpmB.env, KEYPORT_DEVICE_ASSET_TAG: 'NEG-B' } });
  dataA = await deviceA.enrollmentData();
  await deviceB.enrollmentData(); // TPM B has its own AK, so activation fails on the EK, not the AK.
});

afterAll(async () => {
  api?.close();
  admin?.close();
  await deviceA?.close();
  await deviceB?.close();
  await lab?.stop();
  await Promise.all([tpmA?.stop(), tpmB?.stop()]);
  clock?.dispose();
  await rm(home, { recursive: true, force: true });
});

const withTag = (data: DeviceData, assetTag: string): DeviceData => ({ ...data, assetTag });

describe('enrollment tokens', () => {
  it('refuses a token used twice', async () => {
    const token = await register('NEG-TWICE');
    const begun = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-TWICE'),
    });
    await api.devices.completeDeviceEnrollment({
      challengeId: begun.challengeId,
      response: await deviceA.answer(begun.challenge!),
    });
    const before = stored();
    const again = await refusal(
      api.devices.beginDeviceEnrollment({ token, currentDevice: false, device: withTag(dataA, 'NEG-TWICE') }),
    );
    expect(again.code).toBe('ACCESS_DENIED');
    expect(again.message).toContain('invalid or was already used');
    expect(stored()).toEqual(before);
    // The same TPM enrolled once; remove it again so the other cases can use TPM A.
    await admin.devices.deleteDevice({ device: 'NEG-TWICE' });
  });

  it('refuses an expired token, on a clock the test moves', async () => {
    await admin.devices.addDevice({ osType: 'linux', assetTag: 'NEG-EXP' });
    const { token } = await admin.devices.createDeviceEnrollToken({ device: 'NEG-EXP', ttlSeconds: 60 });
    clock.advance(60_000);
    const before = stored();
    const expired = await refusal(
      api.devices.beginDeviceEnrollment({ token, currentDevice: false, device: withTag(dataA, 'NEG-EXP') }),
    );
    expect(expired.code).toBe('EXPIRED');
    expect(stored()).toEqual(before);
  });

  it('refuses a token for another asset tag, and leaves it unspent', async () => {
    const token = await register('NEG-OTHER');
    const before = stored();
    const other = await refusal(
      api.devices.beginDeviceEnrollment({
        token,
        currentDevice: false,
        device: withTag(dataA, 'NOT-THIS-ONE'),
      }),
    );
    expect(other.code).toBe('ACCESS_DENIED');
    expect(other.message).toContain('is for device "NEG-OTHER"');
    expect(stored()).toEqual(before);
  });
});

describe('the TPM checks', () => {
  it('refuses an EK certificate under a CA not in ekcert_allowed_cas', async () => {
    const token = await register('NEG-EKCA');
    const cap = JSON.parse((await admin.admin.getResource({ kind: 'cap', name: '' })).json);
    const setCas = (cas: string[]) =>
      admin.admin.createResources({
        documentsJson: [
          JSON.stringify({
            ...cap,
            spec: { ...cap.spec, device_trust: { ...cap.spec.device_trust, ekcert_allowed_cas: cas } },
          }),
        ],
        force: true,
      });
    await setCas([tpmB.manufacturerCaPem]);
    try {
      const before = stored();
      const refused = await refusal(
        api.devices.beginDeviceEnrollment({
          token,
          currentDevice: false,
          device: withTag(dataA, 'NEG-EKCA'),
        }),
      );
      expect(refused).toMatchObject({ code: 'ACCESS_DENIED', fields: { fieldPath: 'ek_certificate' } });
      expect(stored()).toEqual(before);
      // The right manufacturer's CA admits the same TPM.
      await setCas([tpmA.manufacturerCaPem]);
      const begun = await api.devices.beginDeviceEnrollment({
        token,
        currentDevice: false,
        device: withTag(dataA, 'NEG-EKCA'),
      });
      expect(begun.challenge?.credentialBlob.length).toBeGreaterThan(0);
    } finally {
      await setCas([]);
    }
  });

  it('refuses an attestation key that is not a restricted signing key', async () => {
    const token = await register('NEG-AK');
    const ak = parseTpmtPublic(dataA.akPublic, 'ak');
    const unrestricted = encodeTpmtPublic({
      ...ak,
      objectAttributes: ak.objectAttributes & ~TPMA_OBJECT.restricted,
    });
    const before = stored();
    const refused = await refusal(
      api.devices.beginDeviceEnrollment({
        token,
        currentDevice: false,
        device: { ...withTag(dataA, 'NEG-AK'), akPublic: Buffer.from(unrestricted) },
      }),
    );
    expect(refused).toMatchObject({ code: 'ACCESS_DENIED', fields: { fieldPath: 'device.ak_public' } });
    expect(stored()).toEqual(before);
  });

  it('refuses an activation answered by another TPM', async () => {
    const token = await register('NEG-ACT');
    const begun = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-ACT'),
    });
    // TPM B cannot open a credential sealed to TPM A's EK.
    const tpmRefusal = await refusal(
      deviceB.tpm.activateCredential(begun.challenge!.credentialBlob, begun.challenge!.encryptedSecret),
    );
    expect(tpmRefusal.code).toBe('PRECONDITION_FAILED');
    // A client that answers with TPM B's quote and a made-up secret is refused; nothing is enrolled.
    const before = stored();
    const quote = await deviceB.tpm.quote(begun.challenge!.nonce);
    const refused = await refusal(
      api.devices.completeDeviceEnrollment({
        challengeId: begun.challengeId,
        response: {
          activatedSecret: Buffer.alloc(32, 7),
          quote: { attest: Buffer.from(quote.attest), signature: Buffer.from(quote.signature) },
        },
      }),
    );
    expect(refused).toMatchObject({
      code: 'ACCESS_DENIED',
      fields: { fieldPath: 'response.activated_secret' },
    });
    expect(stored()).toEqual(before);
  });

  it('refuses a quote over the wrong nonce, and the challenge is spent', async () => {
    const token = await register('NEG-NONCE');
    const begun = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-NONCE'),
    });
    const right = await deviceA.answer(begun.challenge!);
    const wrongQuote = await deviceA.tpm.quote(Buffer.alloc(32, 1));
    const before = stored();
    const refused = await refusal(
      api.devices.completeDeviceEnrollment({
        challengeId: begun.challengeId,
        response: {
          activatedSecret: right.activatedSecret,
          quote: { attest: Buffer.from(wrongQuote.attest), signature: Buffer.from(wrongQuote.signature) },
        },
      }),
    );
    expect(refused.code).toBe('ACCESS_DENIED');
    expect(refused.message).toContain('not over this challenge');
    expect(stored()).toEqual(before);
    const retried = await refusal(
      api.devices.completeDeviceEnrollment({ challengeId: begun.challengeId, response: right }),
    );
    expect(retried.code).toBe('EXPIRED');
    expect(stored()).toEqual(before);
  });

  it('refuses a replayed quote at enrollment and at login', async () => {
    const token = await register('NEG-REPLAY');
    const first = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-REPLAY'),
    });
    const firstAnswer = await deviceA.answer(first.challenge!);
    const second = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-REPLAY'),
    });
    const secondSecret = await deviceA.tpm.activateCredential(
      second.challenge!.credentialBlob,
      second.challenge!.encryptedSecret,
    );
    const before = stored();
    // The second ceremony answered with the first one's quote.
    const replayed = await refusal(
      api.devices.completeDeviceEnrollment({
        challengeId: second.challengeId,
        response: { activatedSecret: Buffer.from(secondSecret), quote: firstAnswer.quote },
      }),
    );
    expect(replayed.message).toContain('not over this challenge');
    expect(stored()).toEqual(before);

    // Enrolled for real; then a login that answers its device nonce with an older quote is refused.
    await api.devices.completeDeviceEnrollment({ challengeId: first.challengeId, response: firstAnswer });
    const credentialId = (await deviceA.credentialId())!;
    const login = async (
      deviceResponse: (nonce: Buffer) => Promise<{ attest: Buffer; signature: Buffer }>,
    ) => {
      const challenge = await api.auth.createAuthenticateChallenge({
        user: person.user,
        password: person.password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        device: { credentialId },
      });
      expect(challenge.deviceChallenge?.nonce.length).toBe(32);
      const code = totpCode(person.totpSecret, clock.now() + 30_000);
      clock.advance(60_000);
      return api.auth.login({
        mfaResponse: { challengeId: challenge.challengeId, response: { $case: 'totp', value: { code } } },
        sshPublicKey: '',
        tlsPublicKey: publicKeyPem(),
        ttlSeconds: 0,
        deviceResponse: {
          activatedSecret: Buffer.alloc(0),
          quote: await deviceResponse(challenge.deviceChallenge!.nonce),
        },
      });
    };
    const fresh = async (nonce: Buffer) => {
      const q = await deviceA.tpm.quote(nonce);
      return { attest: Buffer.from(q.attest), signature: Buffer.from(q.signature) };
    };
    expect((await login(fresh)).device?.assetTag).toBe('NEG-REPLAY');
    const old = firstAnswer.quote!;
    const refused = await refusal(login(async () => old));
    expect(refused.code).toBe('ACCESS_DENIED');
    expect(refused.message).toContain('Device authentication failed');
    await admin.devices.deleteDevice({ device: 'NEG-REPLAY' });
  });

  it('tells a TPM that is not the enrolled one, and does not trust a login from it', async () => {
    await enrollThisDevice(profiles(), (await profiles().getProfile(lab.address))!, {
      token: await register('NEG-SWAP'),
      env: envA('NEG-SWAP'),
    });
    const envB = { ...tpmB.env, KEYPORT_DEVICE_ASSET_TAG: 'NEG-SWAP' };
    const current = async () => (await profiles().getProfile(lab.address))!;
    expect((await thisDeviceStatus(profiles(), await current(), { env: envA('NEG-SWAP') })).state).toBe(
      'enrolled',
    );
    expect((await thisDeviceStatus(profiles(), await current(), { env: envB })).state).toBe('other_tpm');
    expect((await signIn({ env: envB })).device).toBeUndefined();
    expect((await signIn({ env: envA('NEG-SWAP') })).device?.assetTag).toBe('NEG-SWAP');
    await admin.devices.deleteDevice({ device: 'NEG-SWAP' });
  });

  it('stops a deleted device: its enrollment cannot complete, and a login from it is not trusted', async () => {
    const token = await register('NEG-DEL');
    const begun = await api.devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: withTag(dataA, 'NEG-DEL'),
    });
    await admin.devices.deleteDevice({ device: 'NEG-DEL' });
    const before = stored();
    const refused = await refusal(
      api.devices.completeDeviceEnrollment({
        challengeId: begun.challengeId,
        response: await deviceA.answer(begun.challenge!),
      }),
    );
    expect(refused.code).toBe('ACCESS_DENIED');
    expect(stored()).toEqual(before);

    // Enrolled, signed in with it, then deleted: the next login carries no device.
    await enrollThisDevice(profiles(), (await profiles().getProfile(lab.address))!, {
      token: await register('NEG-DEL2'),
      env: envA('NEG-DEL2'),
    });
    expect((await signIn({ env: envA('NEG-DEL2') })).device?.assetTag).toBe('NEG-DEL2');
    await admin.devices.deleteDevice({ device: 'NEG-DEL2' });
    expect((await signIn({ env: envA('NEG-DEL2') })).device).toBeUndefined();
    // Locked works the same way.
    await enrollThisDevice(profiles(), (await profiles().getProfile(lab.address))!, {
      token: await register('NEG-LOCK'),
      env: envA('NEG-LOCK'),
    });
    await admin.devices.lockDevice({ device: 'NEG-LOCK', reason: 'stolen' });
    expect((await signIn({ env: envA('NEG-LOCK') })).device).toBeUndefined();
  });
});

function publicKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();
}
