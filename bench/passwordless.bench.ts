// Passwordless login end to end (usernameless, the lab key touching itself, PIN for user verification),
// as `keyport login --auth passwordless` does it, against its floor measured in the same run: its
// deliberate costs, i.e. two bare gRPC round trips on a fresh TLS channel, the three security key
// exchanges a PIN-protected passkey with user verification needs (getKeyAgreement,
// getPinUvAuthTokenUsingPinWithPermissions with the PIN, getAssertion), made raw against the same soft
// key by the soft key's own test platform (lab/security-key/raw-client.test-support.ts, no Keyport client
// code), and the server's verification of that assertion (auth/webauthn.ts verifyAssertion). With step
// timings on (KEYPORT_PERF=1), it prints where the time goes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MfaDeviceRow } from '../auth/storage/store';
import { verifyAssertion } from '../auth/webauthn';
import { connectCluster } from '../client/api';
import { addDevice } from '../client/ceremonies/devices';
import { loginPasswordless, loginWithPassword } from '../client/ceremonies/login';
import { signup } from '../client/ceremonies/signup';
import { parseClusterAddress } from '../client/cluster-trust';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { takePerfRecords } from '../client/perf';
import { ProfileStore } from '../client/profiles';
import { connectAsAdmin, openClusterDb, startLabCluster } from '../lab/cluster';
import { PlatformPin, RawCtaphid, tokenParam } from '../lab/security-key/raw-client.test-support';
import { startSoftKey } from '../lab/security-key/soft-key';
import { median, report, timeEach } from './stats';
import { breakdown, enableStepTimings, printBreakdown, serverRecords } from './steps';

const LOGINS = Number(process.env.BENCH_PASSWORDLESS_LOGINS ?? 15);
const PIN = '2468';
const TARGET_RATIO = 1.5;
const PASSWORD = 'pia-password-123';

const PERMISSION_GA = 0x02;
const RP_ID = 'localhost';

export async function benchPasswordless() {
  enableStepTimings();
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-pl-'));
  const cluster = await startLabCluster({
    clusterName: 'bench-passwordless',
    configYaml:
      'auth_service:\n  public_addr: localhost:0\n  authentication:\n    second_factors: [webauthn, otp]\n    webauthn:\n      rp_id: localhost\n',
  });
  // The first device (a plain second factor) lives on its own key; the passkey on `key`, the one timed.
  // It touches slowly, so while the passkey is registered the new key answers first (an old key tapped
  // first ends a registration as "already registered", as browsers do).
  const firstKey = await startSoftKey({
    socketPath: join(work, 'f.sock'),
    statePath: join(work, 'f.json'),
    touch: 'auto:300',
  });
  const key = await startSoftKey({
    socketPath: join(work, 'k.sock'),
    statePath: join(work, 'k.json'),
    touch: 'auto',
    pin: PIN,
  });
  const previousEnv = process.env[LAB_SECURITY_KEY_ENV];
  process.env[LAB_SECURITY_KEY_ENV] = firstKey.socketPath;
  try {
    const address = parseClusterAddress(cluster.address);
    const home = join(work, 'home');
    // pia signs up with the key as her first device, logs in with it, then adds a passkey on it.
    const admin = await connectAsAdmin(cluster);
    const { signupToken } = await admin.admin.createUser({
      name: 'pia',
      roles: ['access'],
      traits: { logins: 'pia' },
    });
    admin.close();
    const profiles = new ProfileStore(home);
    const securityKey = { tap: () => {}, pin: async () => PIN, newPin: async () => PIN };
    const noOtp = async () => Promise.reject(new Error('no OTP device in this benchmark'));
    const prompts = {
      confirmCaPin: async () => true,
      password: async () => PASSWORD,
      otpCode: noOtp,
      securityKey,
    };
    await signup({
      profiles,
      address,
      token: signupToken,
      caPin: cluster.caPin,
      deviceType: 'webauthn',
      prompts: { ...prompts, newPassword: async () => PASSWORD, showTotpEnrollment: async () => {} },
    });
    await loginWithPassword({
      profiles,
      address,
      user: 'pia',
      caPin: cluster.caPin,
      keystore: 'file',
      mfa: 'key',
      prompts,
    });
    process.env[LAB_SECURITY_KEY_ENV] = `${firstKey.socketPath}:${key.socketPath}`;
    await addDevice(profiles, {
      name: 'passkey',
      type: 'webauthn',
      passwordless: true,
      existing: 'key',
      prompts: { otpCode: noOtp, securityKey, say: () => {}, showTotpEnrollment: async () => {} },
    });

    process.env[LAB_SECURITY_KEY_ENV] = key.socketPath;
    const calls: string[] = [];
    const outputBefore = cluster.output().length;
    takePerfRecords();
    const logins = await timeEach(LOGINS, async () => {
      calls.length = 0;
      await loginPasswordless({
        profiles,
        address,
        caPin: cluster.caPin,
        keystore: 'file',
        prompts,
        onCall: (m) => calls.push(m),
      });
    });
    const roundTrips = calls.length;
    const steps = breakdown([...takePerfRecords(), ...serverRecords(cluster.output(), outputBefore)]);

    // The passkey as keyport-auth stored it, for the server's verification in the floor.
    const db = openClusterDb(cluster);
    const passkey = db.prepare("SELECT * FROM mfa_devices WHERE user = 'pia' AND name = 'passkey'").get() as
      MfaDeviceRow | undefined;
    db.close();
    if (!passkey) throw new Error('no passkey row for pia');
    const rp = { rpId: RP_ID, rpName: 'bench-passwordless', allowedCas: [], deniedCas: [] };
    const origin = `https://${RP_ID}:${address.port}`;

    const trusted = await profiles.getTrustedCluster(address);
    const raw = await RawCtaphid.connect(key.socketPath);
    const cid = await raw.init();
    const parts = {
      pings: [] as number[],
      keyAgreement: [] as number[],
      pinToken: [] as number[],
      assertion: [] as number[],
      verify: [] as number[],
    };
    const floor = await timeEach(LOGINS * 2, async () => {
      let at = performance.now();
      const lap = (into: number[]) => {
        const now = performance.now();
        into.push(now - at);
        at = now;
      };
      const api = connectCluster({ address, caPem: trusted?.caPem ?? '', caPin: cluster.caPin });
      await api.auth.getClusterInfo({});
      await api.auth.getClusterInfo({});
      api.close();
      lap(parts.pings);
      // getKeyAgreement, then the PIN token for getAssertion on this RP ID.
      const shared = await PlatformPin.agree(raw, cid);
      lap(parts.keyAgreement);
      const tokenAnswer = await raw.cbor(
        cid,
        0x06,
        new Map<number, unknown>([
          [1, 2],
          [2, 9],
          [3, shared.platformKey],
          [6, shared.pinHashEnc(PIN)],
          [9, PERMISSION_GA],
          [0x0a, RP_ID],
        ]),
      );
      if (tokenAnswer.status !== 0) throw new Error(`PIN token: 0x${tokenAnswer.status.toString(16)}`);
      const token = shared.decrypt(tokenAnswer.body?.get(2) as Uint8Array);
      lap(parts.pinToken);
      const challenge = randomBytes(32).toString('base64url');
      const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin }));
      const clientDataHash = createHash('sha256').update(clientData).digest();
      const asserted = await raw.cbor(
        cid,
        0x02,
        new Map<number, unknown>([
          [1, RP_ID],
          [2, clientDataHash],
          [6, tokenParam(token, clientDataHash)],
          [7, 2],
        ]),
      );
      if (asserted.status !== 0) throw new Error(`getAssertion: 0x${asserted.status.toString(16)}`);
      lap(parts.assertion);
      const body = asserted.body as Map<number, unknown>;
      const credentialId = Buffer.from(
        (body.get(1) as Map<string, Uint8Array>).get('id') as Uint8Array,
      ).toString('base64url');
      const verified = await verifyAssertion({
        rp,
        response: {
          id: credentialId,
          rawId: credentialId,
          type: 'public-key',
          clientExtensionResults: {},
          response: {
            clientDataJSON: clientData.toString('base64url'),
            authenticatorData: Buffer.from(body.get(2) as Uint8Array).toString('base64url'),
            signature: Buffer.from(body.get(3) as Uint8Array).toString('base64url'),
            userHandle: Buffer.from(
              (body.get(4) as Map<string, Uint8Array>).get('id') as Uint8Array,
            ).toString('base64url'),
          },
        },
        expectedChallenge: challenge,
        device: { ...passkey, webauthn_sign_count: 0 },
        requireUserVerification: true,
      });
      if (!verified.ok) throw new Error('the floor assertion did not verify');
      lap(parts.verify);
    });
    raw.close();
    printBreakdown('passwordless login (soft key, PIN)', steps);
    const ms = (samples: number[]) => Number(median(samples).toFixed(3));
    const line = report(
      'passwordless login (soft key, PIN)',
      logins,
      '2 gRPC round trips on a fresh channel + raw getKeyAgreement, getPinUvAuthToken, getAssertion + assertion verify',
      floor,
      {
        floor_parts_median_ms: {
          fresh_channel_2_round_trips: ms(parts.pings),
          get_key_agreement: ms(parts.keyAgreement),
          get_pin_uv_auth_token: ms(parts.pinToken),
          get_assertion: ms(parts.assertion),
          assertion_verify: ms(parts.verify),
        },
        round_trips_per_login: roundTrips,
        round_trip_target: 2,
        target_ratio: TARGET_RATIO,
        steps,
      },
    );
    return { ...line, within_target: line.ratio <= TARGET_RATIO };
  } finally {
    if (previousEnv === undefined) delete process.env[LAB_SECURITY_KEY_ENV];
    else process.env[LAB_SECURITY_KEY_ENV] = previousEnv;
    await key.stop();
    await firstKey.stop();
    await cluster.stop();
    await rm(work, { recursive: true, force: true });
  }
}
