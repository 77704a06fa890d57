// Passwordless login end to end (usernameless, the lab key touching itself, PIN for user verification),
// as `keyport login --auth passwordless` does it, against its floor measured in the same run: two bare
// gRPC round trips on a fresh TLS channel plus one raw CTAPHID CBOR exchange (authenticatorGetInfo) with
// the same soft key.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import { addDevice } from '../client/ceremonies/devices';
import { loginPasswordless, loginWithPassword } from '../client/ceremonies/login';
import { signup } from '../client/ceremonies/signup';
import { parseClusterAddress } from '../client/cluster-trust';
import { CTAP2_CMD } from '../client/hardware/fido/ctap2';
import { CtaphidDevice } from '../client/hardware/fido/device';
import { LAB_SECURITY_KEY_ENV, SocketHidTransport } from '../client/hardware/fido/socket-transport';
import { ProfileStore } from '../client/profiles';
import { connectAsAdmin, startLabCluster } from '../lab/cluster';
import { startSoftKey } from '../lab/security-key/soft-key';
import { report, timeEach } from './stats';

const LOGINS = Number(process.env.BENCH_PASSWORDLESS_LOGINS ?? 15);
const PIN = '2468';
const PASSWORD = 'pia-password-123';

export async function benchPasswordless() {
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

    const trusted = await profiles.getTrustedCluster(address);
    const floor = await timeEach(LOGINS * 2, async () => {
      const api = connectCluster({ address, caPem: trusted?.caPem ?? '', caPin: cluster.caPin });
      await api.auth.getClusterInfo({});
      await api.auth.getClusterInfo({});
      api.close();
      const device = await CtaphidDevice.open(await SocketHidTransport.connect(key.socketPath));
      await device.cbor(CTAP2_CMD.GET_INFO, new Uint8Array(0));
      await device.close();
    });
    return report(
      'passwordless login (soft key, PIN)',
      logins,
      '2 gRPC round trips + 1 CTAPHID CBOR exchange',
      floor,
      {
        round_trips_per_login: roundTrips,
        round_trip_target: 2,
      },
    );
  } finally {
    if (previousEnv === undefined) delete process.env[LAB_SECURITY_KEY_ENV];
    else process.env[LAB_SECURITY_KEY_ENV] = previousEnv;
    await key.stop();
    await firstKey.stop();
    await cluster.stop();
    await rm(work, { recursive: true, force: true });
  }
}
