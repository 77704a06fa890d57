// Login round trip (password + TOTP, as `keyport login` does it: fresh TLS channel, two calls) against
// its floor: a bare authenticated gRPC ping on a fresh channel to the same server, in the same run.
// Each login uses its own user, because a TOTP time step can be spent only once.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress, pinOf } from '../client/cluster-trust';
import { FileStore, fileKeyStoreDir } from '../client/keystore';
import { ProfileStore } from '../client/profiles';
import { startLabCluster } from '../lab/cluster';
import { median, report, timeEach } from './stats';

const USERS = Number(process.env.BENCH_LOGINS ?? 20);
const PINGS = Number(process.env.BENCH_PINGS ?? 60);

export async function benchLogin() {
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

    const profile = await profiles.getProfile();
    if (!profile) throw new Error('no profile after login');
    const clientKeyPem = await new FileStore(fileKeyStoreDir(home)).get(profile.keyId);
    const trusted = await profiles.getTrustedCluster(address);
    const pings = await timeEach(PINGS, async () => {
      const api = connectCluster({
        address,
        caPem: trusted?.caPem ?? '',
        caPin: cluster.caPin,
        clientKeyPem,
        clientCertPem: profile.tlsCertPem,
      });
      await api.user.ping({});
      api.close();
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
    return report('login (password + TOTP)', logins, 'authenticated gRPC ping, fresh channel', pings, {
      round_trips_per_login: roundTrips,
      round_trip_target: 2,
      warm_ping_median_ms: Number(median(warmPings).toFixed(3)),
    });
  } finally {
    await cluster.stop();
    await rm(home, { recursive: true, force: true });
  }
}
