// Login round trip (password + TOTP, as `keyport login` does it: fresh TLS channel, two calls) against
// its floor, measured in the same run: its deliberate costs, i.e. two bare authenticated gRPC pings on a
// fresh channel to the same server, one argon2id verify with the server's parameters (auth/passwords.ts)
// and one ECDSA P-256 signature by a session key. Each login uses its own user, because a TOTP time step
// can be spent only once. With step timings on (KEYPORT_PERF=1), it prints where the time goes.
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, verifyPassword } from '../auth/passwords';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress, pinOf } from '../client/cluster-trust';
import { FileStore, fileKeyStoreDir } from '../client/keystore';
import { ProfileStore } from '../client/profiles';
import { startLabCluster } from '../lab/cluster';
import { takePerfRecords } from '../client/perf';
import { median, report, timeEach } from './stats';
import { breakdown, enableStepTimings, printBreakdown, serverRecords } from './steps';

const USERS = Number(process.env.BENCH_LOGINS ?? 20);
const PINGS = Number(process.env.BENCH_PINGS ?? 60);
const TARGET_RATIO = 1.5;

export async function benchLogin() {
  enableStepTimings();
  const cluster = await startLabCluster({ clusterName: 'bench' });
  const home = await mkdtemp(join(tmpdir(), 'keyport-bench-'));
  try {
    const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8'));
    const address = parseClusterAddress(cluster.address);
    const admin = connectCluster({
      address,
      caPem: identity.caCertPem,
      caPin: pinOf(new X509Certificate(identity.caCertPem)),
      clientKeyPem: identity.keyPem,
      clientCertPem: identity.certPem,
    });
    const people: { user: string; secret: string }[] = [];
    for (let i = 0; i < USERS; i++) {
      const user = `bench${i}`;
      const { signupToken } = await admin.admin.createUser({
        name: user,
        roles: ['access'],
        traits: { logins: user },
      });
      const started = await admin.auth.startSignup({
        token: signupToken,
        deviceType: 1,
        passwordless: false,
        deviceCredentialId: '',
      });
      const secret = started.registerChallenge?.totp?.secret ?? '';
      await admin.auth.completeSignup({
        token: signupToken,
        password: `${user}-password-123`,
        newDevice: {
          challengeId: '',
          deviceName: 'otp',
          response: { $case: 'totp', value: { code: totpCode(secret, Date.now()) } },
        },
      });
      people.push({ user, secret });
    }
    admin.close();

    const profiles = new ProfileStore(home);
    const calls: string[] = [];
    const outputBefore = cluster.output().length;
    takePerfRecords();
    const logins = await timeEach(USERS, async (i) => {
      const person = people[i] as { user: string; secret: string };
      calls.length = 0;
      await loginWithPassword({
        profiles,
        address,
        user: person.user,
        caPin: cluster.caPin,
        keystore: 'file',
        onCall: (method) => calls.push(method),
        prompts: {
          confirmCaPin: async () => true,
          password: async () => `${person.user}-password-123`,
          // The next time step: signup spent the current one.
          otpCode: async () => totpCode(person.secret, Date.now() + 30_000),
        },
      });
    });
    const roundTrips = calls.length;
    const steps = breakdown([...takePerfRecords(), ...serverRecords(cluster.output(), outputBefore)]);

    const profile = await profiles.getProfile();
    if (!profile) throw new Error('no profile after login');
    const clientKeyPem = await new FileStore(fileKeyStoreDir(home)).get(profile.keyId);
    const trusted = await profiles.getTrustedCluster(address);
    const passwordHash = await hashPassword('floor-password-123');
    const signingKey = createPrivateKey(
      generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      }),
    );
    const parts = { pings: [] as number[], argon2id: [] as number[], signature: [] as number[] };
    const floor = await timeEach(PINGS, async () => {
      let at = performance.now();
      const lap = (into: number[]) => {
        const now = performance.now();
        into.push(now - at);
        at = now;
      };
      const api = connectCluster({
        address,
        caPem: trusted?.caPem ?? '',
        caPin: cluster.caPin,
        clientKeyPem,
        clientCertPem: profile.tlsCertPem,
      });
      await api.user.ping({});
      await api.user.ping({});
      api.close();
      lap(parts.pings);
      if (!(await verifyPassword(passwordHash, 'floor-password-123'))) throw new Error('argon2id floor');
      lap(parts.argon2id);
      sign('sha256', Buffer.from('floor'), signingKey);
      lap(parts.signature);
    });
    const warm = connectCluster({
      address,
      caPem: trusted?.caPem ?? '',
      caPin: cluster.caPin,
      clientKeyPem,
      clientCertPem: profile.tlsCertPem,
    });
    await warm.user.ping({});
    const warmPings = await timeEach(PINGS, () => warm.user.ping({}));
    warm.close();
    printBreakdown('login (password + TOTP)', steps);
    const line = report(
      'login (password + TOTP)',
      logins,
      '2 authenticated gRPC pings on a fresh channel + argon2id verify + P-256 signature',
      floor,
      {
        floor_parts_median_ms: {
          fresh_channel_2_pings: Number(median(parts.pings).toFixed(3)),
          argon2id_verify: Number(median(parts.argon2id).toFixed(3)),
          p256_signature: Number(median(parts.signature).toFixed(3)),
        },
        round_trips_per_login: roundTrips,
        round_trip_target: 2,
        target_ratio: TARGET_RATIO,
        warm_ping_median_ms: Number(median(warmPings).toFixed(3)),
        steps,
      },
    );
    return { ...line, within_target: line.ratio <= TARGET_RATIO };
  } finally {
    await cluster.stop();
    await rm(home, { recursive: true, force: true });
  }
}
