// Login with device authentication (this machine's TPM quoting the login's nonce, inside the same two
// round trips) against the same password + OTP login without it, same user, same cluster, same run:
// the ratio is what device trust adds. Round trips are counted per login, and more than 2 fails.
// The TPM is a real swtpm (lab/tpm.ts); the cluster's clock (lab/clock.ts) moves a minute after each
// login so every login has a fresh OTP time step.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totpCode } from '../auth/totp';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { enrollThisDevice } from '../client/device-trust/enroll';
import { takePerfRecords } from '../client/perf';
import { ProfileStore } from '../client/profiles';
import { createLabClock } from '../lab/clock';
import { connectAsAdmin, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import { startLabTpm } from '../lab/tpm';
import { report } from './stats';
import { breakdown, enableStepTimings, printBreakdown, serverRecords } from './steps';

const LOGINS = Number(process.env.BENCH_DEVICE_LOGINS ?? 15);
const ASSET_TAG = 'BENCH-DEVICE-1';
const PASSWORD = 'dee-password-123';
const CONFIG = [
  'auth_service:',
  '  authentication:',
  '    type: local',
  '    second_factor: otp',
  '    device_trust:',
  '      mode: optional',
  '',
].join('\n');

export async function benchDeviceLogin() {
  enableStepTimings();
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-dt-'));
  const clock = createLabClock();
  const tpm = await startLabTpm();
  const cluster = await startLabCluster({ clusterName: 'bench-device', configYaml: CONFIG, env: clock.env });
  try {
    const address = parseClusterAddress(cluster.address);
    // Signed up elsewhere (its own home): the measured logins start with no trusted cluster.
    const { totpSecret: secret } = await signUpUserInProcess(
      cluster,
      join(work, 'signup'),
      'dee',
      ['access'],
      PASSWORD,
    );
    const admin = await connectAsAdmin(cluster);
    await admin.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
    const { token } = await admin.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 });
    admin.close();

    const profiles = new ProfileStore(join(work, 'home'));
    const env = { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG };
    const calls: string[] = [];
    const callsPerLogin: number[] = [];
    const signIn = async (device: boolean) => {
      calls.length = 0;
      const start = performance.now();
      const profile = await loginWithPassword({
        profiles,
        address,
        user: 'dee',
        caPin: cluster.caPin,
        keystore: 'file',
        device: device ? { env } : false,
        onCall: (method) => calls.push(method),
        prompts: {
          confirmCaPin: async () => true,
          password: async () => PASSWORD,
          otpCode: async () => totpCode(secret, clock.now() + 30_000),
        },
      });
      const elapsed = performance.now() - start;
      callsPerLogin.push(calls.length);
      clock.advance(60_000);
      return { profile, elapsed };
    };
    // Signed in without the device, then enrolled; the first login with it warms the helper's path.
    await signIn(false);
    const profile = await profiles.getProfile();
    if (!profile) throw new Error('no profile after login');
    await enrollThisDevice(profiles, profile, { token, env });
    if (!(await signIn(true)).profile.device) throw new Error('the enrolled device was not authenticated');

    const outputBefore = cluster.output().length;
    takePerfRecords();
    const withDevice: number[] = [];
    const without: number[] = [];
    callsPerLogin.length = 0;
    // Alternated, so drift hits both alike.
    for (let i = 0; i < LOGINS; i++) {
      const trusted = await signIn(true);
      if (!trusted.profile.device) throw new Error('a login went without the device');
      withDevice.push(trusted.elapsed);
      without.push((await signIn(false)).elapsed);
    }
    // Logins ran one at a time, with then without, each leaving one client span and two server spans.
    const kind = (i: number) => (i % 2 === 0 ? 'with device' : 'without');
    const records = [
      ...takePerfRecords().map((r, i) => ({ ...r, span: `${r.span} (${kind(i)})` })),
      ...serverRecords(cluster.output(), outputBefore).map((r, i) => ({
        ...r,
        span: `${r.span} (${kind(Math.floor(i / 2))})`,
      })),
    ];
    const roundTrips = Math.max(...callsPerLogin);
    printBreakdown('login with and without device authentication', breakdown(records));
    return report(
      'login with device authentication (password + TOTP + TPM quote)',
      withDevice,
      'the same login without device authentication',
      without,
      { round_trips_per_login: roundTrips, round_trip_target: 2 },
    );
  } finally {
    await cluster.stop();
    await tpm.stop();
    clock.dispose();
    await rm(work, { recursive: true, force: true });
  }
}
