// Device trust end to end, against a real keyport-auth and a real swtpm (with its own manufacturer CA):
// an admin registers the device and makes a token, the person enrolls it with `keyport device enroll`,
// and every later login from it carries the device in its SSH and X.509 certificates (`ssh-keygen -L`
// shows the extensions). Then self-enrollment, auto-enrollment inside a login (still two round trips),
// and `required` for a user's first MFA device.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { loginWithPassword } from '../client/ceremonies/login';
import { signup } from '../client/ceremonies/signup';
import { addDevice } from '../client/ceremonies/devices';
import { parseClusterAddress } from '../client/cluster-trust';
import { enrollThisDevice } from '../client/device-trust/enroll';
import { ProfileStore } from '../client/profiles';
import { KeyportError } from '../proto/errors';
import {
  connectAsAdmin,
  loginUser,
  openClusterDb,
  runAdmin,
  runKeyport,
  signUpUser,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabTpm } from '../lab/tpm';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import type { LabTpm } from '../lab/tpm';

const ASSET_TAG = 'C00AA0AAAA0A';
let tpm: LabTpm;
const temporary: string[] = [];
const clusters: LabCluster[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

function deviceConfig(extra = ''): string {
  return [
    'auth_service:',
    '  authentication:',
    '    type: local',
    '    second_factor: otp',
    '    device_trust:',
    `      mode: ${extra.includes('required') ? 'required' : 'optional'}`,
    ...(extra.includes('auto') ? ['      auto_enroll: true'] : []),
    '',
  ].join('\n');
}

const clocks = new Map<LabCluster, LabClock>();

async function cluster(name: string, extra = ''): Promise<LabCluster> {
  const clock = createLabClock();
  const started = await startLabCluster({
    clusterName: name,
    configYaml: deviceConfig(extra),
    env: clock.env,
  });
  clusters.push(started);
  clocks.set(started, clock);
  return started;
}

/**
 * `keyport login` with the password and the code of the cluster's next time step; then the cluster's
 * clock moves a minute on, so the next login has a fresh step (a code is never accepted twice).
 */
async function signIn(lab: LabCluster, home: string, person: SignedUpUser, assetTag = ASSET_TAG) {
  const clock = clocks.get(lab)!;
  const result = await loginUser(
    lab,
    home,
    person,
    ['--keystore', 'file'],
    { ...deviceEnv(assetTag), ...clock.env },
    totpCode(person.totpSecret, clock.now() + 30_000),
  );
  clock.advance(60_000);
  return result;
}

const deviceEnv = (assetTag = ASSET_TAG) => ({ ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: assetTag });

function sshExtensions(certificateLine: string): string {
  const dir = temporary[0]!;
  const path = join(dir, `cert-${Math.random().toString(36).slice(2)}-cert.pub`);
  return execFileSync('sh', ['-c', `cat > "${path}" && ssh-keygen -L -f "${path}"`], {
    input: certificateLine,
    encoding: 'utf8',
  });
}

beforeAll(async () => {
  await tempDir('keyport-dt-');
  tpm = await startLabTpm();
});

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  await tpm?.stop();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
  for (const clock of clocks.values()) clock.dispose();
});

describe('register, token, enroll, login (the seed, with keyport for tsh and keyport admin for tctl)', () => {
  it('enrolls with a token, and every later login carries the device in both certificates', async () => {
    const lab = await cluster('dt-token');
    const home = await tempDir('keyport-dt-home-');
    const person = await signUpUser(lab, home, 'dana', ['access']);

    expect((await runKeyport(['device', 'asset-tag'], { home, env: deviceEnv() })).stdout.trim()).toBe(
      ASSET_TAG,
    );
    const added = await runAdmin(lab, ['devices', 'add', '--os', 'linux', '--asset-tag', ASSET_TAG]);
    expect(added.stdout).toContain(`Device ${ASSET_TAG}/linux added to the inventory`);
    const listed = await runAdmin(lab, ['devices', 'ls']);
    expect(listed.stdout).toMatch(/Asset Tag\s+OS\s+Source\s+Enroll Status\s+Owner\s+Device ID/);
    expect(listed.stdout).toMatch(new RegExp(`${ASSET_TAG}\\s+Linux\\s+not enrolled`));

    const tokenRun = await runAdmin(lab, ['devices', 'enroll', '--asset-tag', ASSET_TAG]);
    expect(tokenRun.stdout).toContain(`Run the command below on device "${ASSET_TAG}" to enroll it:`);
    const token = /keyport device enroll --token=(\S+)/.exec(tokenRun.stdout)?.[1];
    expect(token).toBeTruthy();

    // Signed in without a device first: the certificate carries none.
    expect((await signIn(lab, home, person)).code).toBe(0);
    expect((await new ProfileStore(home).getProfile(lab.address))!.device).toBeUndefined();

    const enrolled = await runKeyport(['device', 'enroll', `--token=${token}`], { home, env: deviceEnv() });
    expect(enrolled.stderr + enrolled.stdout).toContain(`Device "${ASSET_TAG}"/Linux enrolled`);
    expect(enrolled.code).toBe(0);
    expect((await runAdmin(lab, ['devices', 'ls'])).stdout).toMatch(
      new RegExp(`${ASSET_TAG}\\s+Linux\\s+enrolled\\s+dana\\s+[0-9a-f-]{36}`),
    );

    // A new login: device extensions in the SSH certificate (ssh-keygen -L) and the X.509 identity.
    const login = await signIn(lab, home, person);
    expect(login.code).toBe(0);
    expect(login.stdout).toContain(
      'Extensions    keyport-device-asset-tag, keyport-device-credential-id, keyport-device-id',
    );
    const profile = (await new ProfileStore(home).getProfile(lab.address))!;
    expect(profile.device).toMatchObject({ assetTag: ASSET_TAG });
    const ssh = sshExtensions(profile.sshCertificate);
    expect(ssh).toContain('keyport-device-id@keyport.dev');
    expect(ssh).toContain('keyport-device-asset-tag@keyport.dev');
    expect(ssh).toContain('keyport-device-credential-id@keyport.dev');
    const x509 = new X509Certificate(profile.tlsCertPem);
    expect(x509.raw.toString('latin1')).toContain(`"keyport-device-asset-tag":"${ASSET_TAG}"`);

    const status = await runKeyport(['device', 'status'], { home, env: deviceEnv() });
    expect(status.stdout).toMatch(/Status\s+trusted in this session/);
    expect(status.stdout).toMatch(/Owner\s+dana/);

    // The audit log has each step.
    const db = openClusterDb(lab);
    const types = db.prepare("SELECT type, success FROM audit_events WHERE type LIKE 'device.%'").all() as {
      type: string;
      success: number;
    }[];
    db.close();
    expect(types).toEqual(
      expect.arrayContaining([
        { type: 'device.add', success: 1 },
        { type: 'device.token', success: 1 },
        { type: 'device.enroll', success: 1 },
        { type: 'device.authenticate', success: 1 },
      ]),
    );

    // Deleting the device stops its credential at once: the live session loses the device, and the next
    // login carries none.
    expect((await runAdmin(lab, ['devices', 'rm', ASSET_TAG])).code).toBe(0);
    const after = await runKeyport(['device', 'status'], { home, env: deviceEnv() });
    expect(after.stdout).toMatch(/Status\s+not registered/);
    expect((await signIn(lab, home, person)).code).toBe(0);
    expect((await new ProfileStore(home).getProfile(lab.address))!.device).toBeUndefined();
  });
});

describe('self-enrollment and auto-enrollment', () => {
  it('lets a device admin register and enroll this device in one step (--current-device)', async () => {
    const lab = await cluster('dt-self');
    const home = await tempDir('keyport-dt-self-');
    const plain = await signUpUser(lab, home, 'pat', ['access']);
    const admin = await signUpUser(lab, home, 'ada', ['access', 'device-admin']);
    expect((await signIn(lab, home, plain, 'SELF-1')).code).toBe(0);
    const refused = await runKeyport(['device', 'enroll', '--current-device'], {
      home,
      env: deviceEnv('SELF-1'),
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Self-enrollment needs a role that allows device admin');

    expect((await signIn(lab, home, admin, 'SELF-1')).code).toBe(0);
    const enrolled = await runKeyport(['device', 'enroll', '--current-device'], {
      home,
      env: deviceEnv('SELF-1'),
    });
    expect(enrolled.stdout).toContain('Device "SELF-1"/Linux enrolled');
    const listed = (await runAdmin(lab, ['devices', 'ls'])).stdout;
    expect(listed).toMatch(/SELF-1\s+Linux\s+self\s+enrolled\s+ada/);
    const login = await signIn(lab, home, admin, 'SELF-1');
    expect(login.stdout).toContain('Device        SELF-1 (trusted)');
  });

  it('auto-enrolls a registered device in the login itself, in two round trips', async () => {
    const lab = await cluster('dt-auto', 'auto');
    const home = await tempDir('keyport-dt-auto-');
    const person = await signUpUserInProcess(lab, home, 'abe', ['access']);
    const admin = await connectAsAdmin(lab);
    await admin.devices.addDevice({ osType: 'linux', assetTag: 'AUTO-1' });
    admin.close();
    const calls: string[] = [];
    const profile = await loginWithPassword({
      profiles: new ProfileStore(home),
      address: parseClusterAddress(lab.address),
      user: 'abe',
      keystore: 'file',
      device: { env: deviceEnv('AUTO-1') },
      onCall: (method) => calls.push(method),
      prompts: {
        confirmCaPin: async () => true,
        password: async () => person.password,
        otpCode: async () => totpCode(person.totpSecret, Date.now() + 30_000),
      },
    });
    expect(calls).toEqual(['auth.createAuthenticateChallenge', 'auth.login']);
    expect(profile.device).toMatchObject({ assetTag: 'AUTO-1' });
    const db = openClusterDb(lab);
    expect(
      db.prepare("SELECT enroll_status, owner FROM trusted_devices WHERE asset_tag = 'AUTO-1'").get(),
    ).toEqual({
      enroll_status: 'enrolled',
      owner: 'abe',
    });
    db.close();
  });
});

describe('auto-enrollment turned on after this client trusted the cluster (the seed: edit the cap, log in again)', () => {
  it('enrolls the device at the next login, and later logins take two calls', async () => {
    const lab = await cluster('dt-auto-late');
    const clock = clocks.get(lab)!;
    const home = await tempDir('keyport-dt-auto-late-');
    const person = await signUpUserInProcess(lab, home, 'liv', ['access']);
    const admin = await connectAsAdmin(lab);
    await admin.devices.addDevice({ osType: 'linux', assetTag: 'LATE-1' });
    const login = async (withDevice = true) => {
      const calls: string[] = [];
      const profile = await loginWithPassword({
        profiles: new ProfileStore(home),
        address: parseClusterAddress(lab.address),
        user: 'liv',
        keystore: 'file',
        device: withDevice ? { env: deviceEnv('LATE-1') } : false,
        onCall: (method) => calls.push(method),
        prompts: {
          confirmCaPin: async () => true,
          password: async () => person.password,
          otpCode: async () => totpCode(person.totpSecret, clock.now() + 30_000),
        },
      });
      clock.advance(60_000);
      return { profile, calls };
    };
    // Auto-enrollment off: a registered device is not enrolled by a login.
    expect((await login()).profile.device).toBeUndefined();
    // The admin turns it on (as `keyport admin edit cap` would); the client has not heard of it.
    const cap = JSON.parse((await admin.admin.getResource({ kind: 'cap', name: '' })).json);
    await admin.admin.createResources({
      documentsJson: [
        JSON.stringify({
          ...cap,
          spec: { ...cap.spec, device_trust: { mode: 'optional', auto_enroll: true } },
        }),
      ],
      force: true,
    });
    admin.close();
    const enrolling = await login();
    expect(enrolling.profile.device).toMatchObject({ assetTag: 'LATE-1' });
    // The settings were asked afresh on the login's channel, once.
    expect(enrolling.calls).toEqual([
      'auth.getClusterInfo',
      'auth.createAuthenticateChallenge',
      'auth.login',
    ]);
    const next = await login();
    expect(next.profile.device).toMatchObject({ assetTag: 'LATE-1' });
    expect(next.calls).toEqual(['auth.createAuthenticateChallenge', 'auth.login']);
    // A login that offers no device leaves the recognised one as it was: the next device login is two calls.
    expect((await login(false)).profile.device).toBeUndefined();
    const again = await login();
    expect(again.profile.device).toMatchObject({ assetTag: 'LATE-1' });
    expect(again.calls).toEqual(['auth.createAuthenticateChallenge', 'auth.login']);
  });
});

describe('device_trust.mode: required, for a first MFA device', () => {
  it('refuses a first MFA device from an untrusted device, and accepts it from an enrolled one', async () => {
    const lab = await cluster('dt-required', 'required');
    const home = await tempDir('keyport-dt-req-');
    const admin = await connectAsAdmin(lab);
    // An enrolled device to sign up from: registered by the admin, enrolled by a device admin.
    await admin.devices.addDevice({ osType: 'linux', assetTag: 'REQ-1' });
    const { signupToken } = await admin.admin.createUser({ name: 'rae', roles: ['access'], traits: {} });
    const profiles = new ProfileStore(home);
    const address = parseClusterAddress(lab.address);
    let secret = '';
    const prompts = {
      confirmCaPin: async () => true,
      newPassword: async () => 'rae-password-123',
      showTotpEnrollment: async (totp: { secret: string }) => void (secret = totp.secret),
      otpCode: async () => totpCode(secret, Date.now()),
    };
    // Without a trusted device: refused, and the token stays usable.
    const refused = await signup({ profiles, address, token: signupToken, prompts, device: false }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(KeyportError);
    expect(refused).toMatchObject({ code: 'DEVICE_TRUST_REQUIRED' });

    // Enroll the device with an admin's session (self-enrollment), then sign up from it.
    admin.close();
    await enrollThisDevice(profiles, await superAdminProfile(lab, home), { env: deviceEnv('REQ-1') });
    await signup({ profiles, address, token: signupToken, prompts, device: { env: deviceEnv('REQ-1') } });
    const db = openClusterDb(lab);
    expect(db.prepare("SELECT count(*) AS n FROM mfa_devices WHERE user = 'rae'").get()).toEqual({ n: 1 });
    db.close();
  });

  it("applies a role's device_trust_mode to adding a first MFA device after signup", async () => {
    // Second factor optional (a user may sign up without one); the role requires a trusted device.
    const clock = createLabClock();
    const lab = await startLabCluster({
      clusterName: 'dt-role',
      env: clock.env,
      configYaml: deviceConfig().replace(
        'second_factor: otp',
        'second_factor: optional\n    webauthn:\n      rp_id: localhost',
      ),
    });
    clusters.push(lab);
    clocks.set(lab, clock);
    const home = await tempDir('keyport-dt-role-');
    const admin = await connectAsAdmin(lab);
    await admin.admin.createResources({
      documentsJson: [
        JSON.stringify({
          kind: 'role',
          version: 'v7',
          metadata: { name: 'secure' },
          spec: { options: { device_trust_mode: 'required' }, allow: { logins: ['ike'] } },
        }),
      ],
      force: false,
    });
    await admin.devices.addDevice({ osType: 'linux', assetTag: 'ROLE-1' });
    const { token } = await admin.devices.createDeviceEnrollToken({ device: 'ROLE-1', ttlSeconds: 0 });
    const { signupToken } = await admin.admin.createUser({ name: 'ike', roles: ['secure'], traits: {} });
    admin.close();
    const profiles = new ProfileStore(home);
    const address = parseClusterAddress(lab.address);
    const never = async (): Promise<string> => {
      throw new KeyportError('CANCELLED', 'no code on this cluster');
    };
    await signup({
      profiles,
      address,
      token: signupToken,
      caPin: lab.caPin,
      device: false,
      prompts: {
        confirmCaPin: async () => false,
        newPassword: async () => 'ike-password-123',
        showTotpEnrollment: async () => {},
        otpCode: never,
      },
    });
    const signIn = (device: false | { env: Record<string, string> }) =>
      loginWithPassword({
        profiles,
        address,
        user: 'ike',
        keystore: 'file',
        device,
        prompts: {
          confirmCaPin: async () => false,
          password: async () => 'ike-password-123',
          otpCode: never,
        },
      });
    const addOtp = () =>
      addDevice(profiles, {
        name: 'phone',
        type: 'totp',
        prompts: {
          otpCode: async () => totpCode(secret, clock.now()),
          securityKey: { tap: () => {}, pin: never, newPin: never },
          say: () => {},
          showTotpEnrollment: async (totp) => void (secret = totp.secret),
        },
      });
    let secret = '';

    // Signed in without the device: a first MFA device is refused, and none is stored.
    await signIn(false);
    await expect(addOtp()).rejects.toMatchObject({ code: 'DEVICE_TRUST_REQUIRED' });
    const count = () => {
      const db = openClusterDb(lab);
      const row = db.prepare("SELECT count(*) AS n FROM mfa_devices WHERE user = 'ike'").get();
      db.close();
      return row;
    };
    expect(count()).toEqual({ n: 0 });

    // Enrolled, and signed in again from the device: the same request succeeds.
    await enrollThisDevice(profiles, (await profiles.getProfile(lab.address))!, {
      token,
      env: deviceEnv('ROLE-1'),
    });
    const trustedProfile = await signIn({ env: deviceEnv('ROLE-1') });
    expect(trustedProfile.device).toMatchObject({ assetTag: 'ROLE-1' });
    await addOtp();
    expect(count()).toEqual({ n: 1 });
  });
});

/**
 * The auth host's super-admin identity as a client profile. On a `required` cluster the very first
 * device is enrolled from a session without one: here the auth host's own identity self-enrolls it.
 */
async function superAdminProfile(lab: LabCluster, home: string) {
  const profiles = new ProfileStore(home);
  const identity = JSON.parse(await readFile(join(lab.dataDir, 'admin-identity.json'), 'utf8')) as {
    address: string;
    caCertPem: string;
    keyPem: string;
    certPem: string;
  };
  const keyId = `${lab.address}/keyport-admin/test`;
  const { openKeyStore } = await import('../client/keystore');
  await openKeyStore('file', home).put(keyId, identity.keyPem);
  await profiles.trustCluster({
    address: lab.address,
    name: lab.clusterName,
    caPin: lab.caPin,
    caPem: identity.caCertPem,
    trustedAtMs: Date.now(),
    deviceTrust: { mode: 'required', autoEnroll: false },
  });
  const profile = {
    address: lab.address,
    cluster: lab.clusterName,
    user: 'keyport-admin',
    roles: [],
    logins: [],
    mfaVerified: false,
    validAfterMs: Date.now(),
    expiresMs: Date.now() + 3600_000,
    keystore: 'file' as const,
    keyId,
    tlsCertPem: identity.certPem,
    sshCertificate: '',
  };
  return profile;
}
