// A cluster of two keyport-auth replicas on one lab PostgreSQL, given to the client as both addresses
// (`keyport login --cluster A,B`): a replica down at the start is passed over (connection refused → B), a
// replica killed with SIGKILL between the two steps of a login has the ceremony start again from step 1 on
// the other (the password resent, the OTP code asked anew), and the client keeps one profile and one
// trusted cluster under the first address. After login, a read through the profile whose replica dies under
// it is sent once more on the other (one notice), a write is not, and the replica that answered is tried
// first from then on, in the process and in the next one (stored with the trusted cluster once). The address
// list's parser refuses empty entries, duplicates and URLs.
import { readdir, readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransportFailure } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { formatClusterAddress, parseClusterAddress, parseClusterAddresses } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import type { Profile, TrustedCluster } from '../client/profiles';
import { replicaAddresses, RETRYING_NOTICE } from '../client/replicas';
import { connectAsProfile } from '../client/session';
import { nextTotpCode, runKeyport, signUpUserInProcess } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { createReplicaSet } from '../lab/replicas';
import type { ReplicaSet } from '../lab/replicas';

describe('parseClusterAddresses', () => {
  it('reads one address or several, in order, with the default port', () => {
    expect(parseClusterAddresses('a.example')).toEqual([{ host: 'a.example', port: 3025 }]);
    expect(parseClusterAddresses('a:3025, b:4025,[::1]:5025')).toEqual([
      { host: 'a', port: 3025 },
      { host: 'b', port: 4025 },
      { host: '::1', port: 5025 },
    ]);
  });

  it('refuses empty entries, duplicates and URLs, with a typed error on the cluster field', () => {
    for (const [text, message] of [
      ['a:3025,,b:3025', /empty entry \(number 2\)/],
      ['a:3025,', /empty entry \(number 2\)/],
      [',a:3025', /empty entry \(number 1\)/],
      ['', /empty entry \(number 1\)/],
      ['a:3025,b:3025,a:3025', /names a:3025 twice/],
      ['A:3025,a', /names a:3025 twice/],
      ['a:3025,https://b:3025', /is a URL, not a cluster address/],
      ['a:3025,b:99999', /is not a cluster address/],
    ] as const) {
      let caught: unknown;
      try {
        parseClusterAddresses(text);
      } catch (error) {
        caught = error;
      }
      expect(caught, text).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'cluster' } });
      expect((caught as Error).message, text).toMatch(message);
    }
  });
});

describe('a client given two replicas of one cluster', () => {
  let work: string;
  let postgres: LabPostgres;
  let replicas: ReplicaSet;
  let replicaA: LabCluster;
  let replicaB: LabCluster;
  let cli: SignedUpUser;
  let inProcess: SignedUpUser;
  let reader: SignedUpUser;
  let sticky: SignedUpUser;
  let editor: SignedUpUser;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-failover-'));
    postgres = await startLabPostgres();
    replicas = await createReplicaSet({
      work,
      connString: postgres.connString,
      clusterName: 'failover',
      publicAddr: 'auth.failover.test:3025',
    });
    [replicaA, replicaB] = await Promise.all([replicas.start('a'), replicas.start('b')]);
    // One person per login, so that no OTP code is spent twice across the tests.
    cli = await signUpUserInProcess(replicaA, join(work, 'signup-cli'), 'cleo', ['access']);
    inProcess = await signUpUserInProcess(replicaB, join(work, 'signup-ip'), 'ines', ['access']);
    reader = await signUpUserInProcess(replicaA, join(work, 'signup-reader'), 'rita', ['access']);
    sticky = await signUpUserInProcess(replicaA, join(work, 'signup-sticky'), 'sami', ['access']);
    editor = await signUpUserInProcess(replicaB, join(work, 'signup-editor'), 'eddie', ['editor']);
  });

  afterAll(async () => {
    await replicaA?.stop();
    await replicaB?.stop();
    await postgres?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const trustedClusters = async (home: string) => {
    const names = await readdir(join(home, 'clusters'));
    return Promise.all(
      names.map(
        async (name) => JSON.parse(await readFile(join(home, 'clusters', name), 'utf8')) as TrustedCluster,
      ),
    );
  };

  it('`keyport login --cluster A,B` signs in on B when A is down, and `keyport status` shows one cluster', async () => {
    const home = join(work, 'home-cli');
    const addressA = replicaA.address;
    await replicaA.stop('SIGKILL');
    const login = await runKeyport(
      [
        'login',
        '--cluster',
        `${addressA},${replicaB.address}`,
        '--user',
        cli.user,
        '--ca-pin',
        replicaB.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { home, input: [cli.password, nextTotpCode(cli.totpSecret)] },
    );
    expect(login.stderr).not.toMatch(/ERROR/);
    expect(login.code).toBe(0);
    // Connection refused at the start is not a retry: the person sees nothing about it.
    expect(login.stderr).not.toMatch(/retrying/);
    expect(login.stdout).toContain(`> Profile ${addressA}`);

    const status = await runKeyport(['status'], { home });
    expect(status.code).toBe(0);
    expect(status.stdout.match(/> Profile /g)).toHaveLength(1);
    expect(status.stdout).toContain(`failover (${addressA})`);
    const clusters = await trustedClusters(home);
    expect(clusters).toHaveLength(1);
    expect(clusters[0]).toMatchObject({
      address: addressA,
      replicas: [addressA, replicaB.address],
      caPin: replicaB.caPin,
      // B answered: the next command tries it first.
      lastReplica: replicaB.address,
    });
    expect(await readdir(join(home, 'profiles'))).toEqual(
      expect.arrayContaining([`${addressA.replace(/[^A-Za-z0-9.-]/g, '_')}.json`]),
    );

    // A again, for the next test (on a new port).
    replicaA = await replicas.start('a');
  });

  it('completes the login on B when A is killed with SIGKILL between step 1 and step 2', async () => {
    const home = join(work, 'home-ip');
    const profiles = new ProfileStore(home);
    const [addressA, addressB] = [
      parseClusterAddress(replicaA.address),
      parseClusterAddress(replicaB.address),
    ];
    const calls: string[] = [];
    const notices: string[] = [];
    let passwordAsks = 0;
    let codeAsks = 0;
    const profile = await loginWithPassword({
      profiles,
      address: addressA,
      replicas: [addressA, addressB],
      user: inProcess.user,
      caPin: replicaA.caPin,
      keystore: 'file',
      device: false,
      onCall: (method) => calls.push(method),
      prompts: {
        confirmCaPin: async () => false,
        password: async () => {
          passwordAsks += 1;
          return inProcess.password;
        },
        otpCode: async () => {
          codeAsks += 1;
          // Step 1 has been answered by A; before step 2 leaves, A dies as a crash would.
          if (codeAsks === 1) {
            expect(calls).toEqual(['auth.getClusterInfo', 'auth.createAuthenticateChallenge']);
            await replicaA.stop('SIGKILL');
          }
          return nextTotpCode(inProcess.totpSecret);
        },
        notice: (message) => notices.push(message),
      },
    });
    expect(profile).toMatchObject({ address: replicaA.address, user: inProcess.user, cluster: 'failover' });
    expect(replicaA.process.signalCode).toBe('SIGKILL');
    // Step 1 again on B, the password resent (asked once), the code asked anew, one notice.
    expect(calls).toEqual([
      'auth.getClusterInfo',
      'auth.createAuthenticateChallenge',
      'auth.login',
      'auth.createAuthenticateChallenge',
      'auth.login',
    ]);
    expect(passwordAsks).toBe(1);
    expect(codeAsks).toBe(2);
    expect(notices).toEqual(['retrying on another auth server']);

    const status = await runKeyport(['status'], { home });
    expect(status.code).toBe(0);
    expect(status.stdout.match(/> Profile /g)).toHaveLength(1);
    expect(status.stdout).toContain(`failover (${replicaA.address})`);
    expect(await trustedClusters(home)).toHaveLength(1);
    expect((await profiles.listProfiles()).map((p) => p.address)).toEqual([replicaA.address]);
  });

  /** `person` signs in, in this process, to the replicas A and B (A first), with the file keystore. */
  const signIn = async (home: string, person: SignedUpUser) => {
    const profiles = new ProfileStore(home);
    const [addressA, addressB] = [
      parseClusterAddress(replicaA.address),
      parseClusterAddress(replicaB.address),
    ];
    const profile: Profile = await loginWithPassword({
      profiles,
      address: addressA,
      replicas: [addressA, addressB],
      user: person.user,
      caPin: replicaA.caPin,
      keystore: 'file',
      device: false,
      prompts: {
        confirmCaPin: async () => false,
        password: async () => person.password,
        otpCode: async () => nextTotpCode(person.totpSecret),
      },
    });
    return { profiles, profile };
  };

  /** In place of a dead replica: a listener on a free port that counts the connections it gets, dropping each. */
  const deadReplica = async () => {
    let count = 0;
    const server: Server = createServer((socket) => {
      count += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return {
      address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      tries: () => count,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };

  const clusterFile = (home: string, address: string) =>
    join(home, 'clusters', `${address.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);

  it('sends a read once more on B, with one notice, when A dies under it after login; B is tried first from then on', async () => {
    replicaA = await replicas.start('a');
    const home = join(work, 'home-reads');
    const { profiles, profile } = await signIn(home, reader);
    const calls: string[] = [];
    const notices: string[] = [];
    const api = await connectAsProfile(profiles, profile, (method) => calls.push(method), {
      notice: (message) => notices.push(message),
    });
    try {
      expect(formatClusterAddress(api.address)).toBe(replicaA.address);
      await replicaA.stop('SIGKILL');
      const { devices } = await api.user.listMfaDevices({});
      expect(devices.map((device) => device.name)).toEqual(['otp']);
      expect(calls).toEqual(['user.listMfaDevices', 'user.listMfaDevices']);
      expect(notices).toEqual([RETRYING_NOTICE]);
      expect(formatClusterAddress(api.address)).toBe(replicaB.address);
      // The next calls go to B at once.
      expect((await api.user.getStatus({})).user).toBe(reader.user);
      expect(calls.slice(2)).toEqual(['user.getStatus']);
      expect(notices).toHaveLength(1);
    } finally {
      api.close();
    }
    // Stored with the trusted cluster, and known to this process even where the stored cluster says otherwise.
    const stored = JSON.parse(await readFile(clusterFile(home, profile.address), 'utf8')) as TrustedCluster;
    expect(stored).toMatchObject({
      replicas: [profile.address, replicaB.address],
      lastReplica: replicaB.address,
    });
    const { lastReplica: _stored, ...inStoredOrder } = stored;
    expect(replicaAddresses(inStoredOrder).map(formatClusterAddress)).toEqual([
      replicaB.address,
      profile.address,
    ]);
  });

  it('tries the replica that answered last first in the next `keyport` processes, stored once', async () => {
    const dead = await deadReplica();
    const home = join(work, 'home-sticky');
    try {
      const login = await runKeyport(
        [
          'login',
          '--cluster',
          `${dead.address},${replicaB.address}`,
          '--user',
          sticky.user,
          '--ca-pin',
          replicaB.caPin,
          '--password-stdin',
          '--keystore',
          'file',
        ],
        { home, input: [sticky.password, nextTotpCode(sticky.totpSecret)] },
      );
      expect(login.stderr).not.toMatch(/ERROR|retrying/);
      expect(login.code).toBe(0);
      // In the order given, the dead one first: it was tried.
      const triedAtLogin = dead.tries();
      expect(triedAtLogin).toBeGreaterThan(0);
      const file = clusterFile(home, dead.address);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
        replicas: [dead.address, replicaB.address],
        lastReplica: replicaB.address,
      });
      const written = await stat(file);

      for (const command of [
        ['mfa', 'ls'],
        ['mfa', 'ls'],
      ]) {
        const read = await runKeyport(command, { home });
        expect(read.stderr).toBe('');
        expect(read.code).toBe(0);
        expect(read.stdout).toMatch(/^otp\s+TOTP/m);
      }
      expect(dead.tries()).toBe(triedAtLogin);
      // Nothing changed, so nothing was written: the same file, not a new one renamed into place.
      const after = await stat(file);
      expect([after.ino, after.mtimeMs]).toEqual([written.ino, written.mtimeMs]);
    } finally {
      await dead.close();
    }
  });

  it('does not send a write again when its replica dies under it; the read after it moves to B', async () => {
    replicaA = await replicas.start('a');
    const home = join(work, 'home-write');
    const { profiles, profile } = await signIn(home, editor);
    const calls: string[] = [];
    const notices: string[] = [];
    const api = await connectAsProfile(profiles, profile, (method) => calls.push(method), {
      notice: (message) => notices.push(message),
    });
    try {
      expect(formatClusterAddress(api.address)).toBe(replicaA.address);
      await replicaA.stop('SIGKILL');
      let failure: unknown;
      await api.admin.lockUser({ name: reader.user, durationSeconds: 0, reason: 'test' }).catch((error) => {
        failure = error;
      });
      expect(failure).toMatchObject({ code: 'UNAVAILABLE' });
      expect(isTransportFailure(failure)).toBe(true);
      expect(calls).toEqual(['admin.lockUser']);
      expect(notices).toEqual([]);

      const user = await api.admin.getResource({ kind: 'user', name: reader.user });
      expect(JSON.parse(user.json).status?.locked_until_ms).toBeUndefined();
      expect(calls).toEqual(['admin.lockUser', 'admin.getResource', 'admin.getResource']);
      expect(notices).toEqual([RETRYING_NOTICE]);
    } finally {
      api.close();
    }
    // And from a terminal, with A still dead: the same read on B.
    const users = await runKeyport(['admin', 'users', 'ls'], { home });
    expect(users.code).toBe(0);
    expect(users.stdout).toMatch(new RegExp(`^${reader.user}\\s.*active$`, 'm'));
  });
});
