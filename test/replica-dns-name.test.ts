// A cluster given as one name that resolves to several replicas (`keyport login --cluster NAME:PORT`, the
// name in the hosts file as DNS round robin would give it: 127.0.0.1 and 127.0.0.2, a replica on each with
// the same port, one lab PostgreSQL). grpc-js dials the name's addresses in order and keeps the first that
// connects, and a replica that died between two calls is passed over by the channel itself (the challenge
// of step 1 is in the shared database, so step 2 is answered by the other). A replica that dies with a call
// in flight (frozen with SIGSTOP, the call sent, then SIGKILL) fails that call in the transport: a login
// then starts again from step 1 on a new channel to the name (the password resent, the OTP code asked
// anew, one notice), a read is sent once more the same way, a device deletion is not. With every address
// dead the login fails as UNAVAILABLE after one more try per other address, not in a loop. The profile and
// the trusted cluster stay under the one name.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransportFailure } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { resolvedAddressCount, RETRYING_NOTICE } from '../client/replicas';
import { connectAsProfile } from '../client/session';
import { nextTotpCode, runKeyport, signUpUserInProcess } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { addHostsName } from '../lab/hosts-file';
import type { HostsName } from '../lab/hosts-file';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { createReplicaSet } from '../lab/replicas';
import type { ReplicaSet } from '../lab/replicas';

describe('a cluster whose one name resolves to two replicas', () => {
  let work: string;
  let postgres: LabPostgres;
  let hosts: HostsName;
  let single: HostsName;
  let replicas: ReplicaSet;
  const running: LabCluster[] = [];

  /** Two replicas on the same free port, one on each of the name's addresses (first 127.0.0.1). */
  const startPair = async (first: string, second: string) => {
    const one = await replicas.start(first, '127.0.0.1:0');
    running.push(one);
    const port = parseClusterAddress(one.address).port;
    const other = await replicas.start(second, `127.0.0.2:${port}`);
    running.push(other);
    return { one, other, address: `${hosts.name}:${port}` };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-dns-replicas-'));
    hosts = await addHostsName('keyport-auth', ['127.0.0.1', '127.0.0.2']);
    single = await addHostsName('keyport-one', ['127.0.0.1']);
    postgres = await startLabPostgres();
    replicas = await createReplicaSet({
      work,
      connString: postgres.connString,
      clusterName: 'roundrobin',
      publicAddr: `${hosts.name}:3025`,
    });
  });

  afterAll(async () => {
    for (const replica of running) await replica.stop();
    await postgres?.stop();
    // The last lines added go first, so each removal cuts the file back.
    await single?.remove();
    await hosts?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Freezes `replica` (a call sent to it stays in flight), then kills it `afterMs` later. */
  const dieWithCallInFlight = (replica: LabCluster, afterMs = 300) => {
    process.kill(replica.process.pid ?? 0, 'SIGSTOP');
    return new Promise<void>((resolve) => setTimeout(resolve, afterMs))
      .then(() => replica.stop('SIGKILL'))
      .then(() => undefined);
  };

  /**
   * `person` signs in to `address`, in this process. Before the first code is given: `kill` are killed
   * (between the calls), and `freeze` dies with step 2 in flight.
   */
  const signIn = async (
    home: string,
    person: SignedUpUser,
    address: string,
    dying: { kill?: LabCluster[]; freeze?: LabCluster } = {},
  ) => {
    let dead: Promise<void> | undefined;
    const profiles = new ProfileStore(home);
    const calls: string[] = [];
    const notices: string[] = [];
    let passwordAsks = 0;
    let codeAsks = 0;
    const signedIn = loginWithPassword({
      profiles,
      address: parseClusterAddress(address),
      user: person.user,
      caPin: running[0]!.caPin,
      keystore: 'file',
      device: false,
      onCall: (method) => calls.push(method),
      prompts: {
        confirmCaPin: async () => false,
        password: async () => {
          passwordAsks += 1;
          return person.password;
        },
        otpCode: async () => {
          codeAsks += 1;
          if (codeAsks === 1) {
            for (const replica of dying.kill ?? []) await replica.stop('SIGKILL');
            if (dying.freeze) dead = dieWithCallInFlight(dying.freeze);
          }
          return nextTotpCode(person.totpSecret);
        },
        notice: (message) => notices.push(message),
      },
    });
    const settled = signedIn.finally(() => dead);
    return { profiles, signedIn: settled, calls, notices, asks: () => ({ passwordAsks, codeAsks }) };
  };

  it('resolves the name to both addresses, as the client asks the system resolver', async () => {
    expect(await resolvedAddressCount(parseClusterAddress(`${hosts.name}:3025`))).toBe(2);
    expect(await resolvedAddressCount(parseClusterAddress('127.0.0.1:3025'))).toBe(1);
    expect(await resolvedAddressCount(parseClusterAddress(`${single.name}:3025`))).toBe(1);
  });

  it('passes over a replica killed between step 1 and step 2: the channel reaches the other', async () => {
    const { one, other, address } = await startPair('a0', 'b0');
    const person = await signUpUserInProcess(other, join(work, 'signup-a0'), 'rhys', ['access']);
    const login = await signIn(join(work, 'home-between'), person, address, { kill: [one] });
    const profile = await login.signedIn;
    expect(one.process.signalCode).toBe('SIGKILL');
    expect(profile).toMatchObject({ address, user: person.user });
    expect(login.calls).toEqual(['auth.getClusterInfo', 'auth.createAuthenticateChallenge', 'auth.login']);
    expect(login.asks()).toEqual({ passwordAsks: 1, codeAsks: 1 });
    expect(login.notices).toEqual([]);
  });

  it('starts the login again on the second replica when the first dies with step 2 in flight', async () => {
    const { one, other, address } = await startPair('a', 'b');
    const person = await signUpUserInProcess(other, join(work, 'signup-a'), 'rhea', ['access']);
    const home = join(work, 'home-login');
    const login = await signIn(home, person, address, { freeze: one });
    const profile = await login.signedIn;
    expect(one.process.signalCode).toBe('SIGKILL');
    expect(profile).toMatchObject({ address, user: person.user, cluster: 'roundrobin' });
    // Step 1 again, on a new channel to the name: the password resent (asked once), the code asked anew.
    expect(login.calls).toEqual([
      'auth.getClusterInfo',
      'auth.createAuthenticateChallenge',
      'auth.login',
      'auth.createAuthenticateChallenge',
      'auth.login',
    ]);
    expect(login.asks()).toEqual({ passwordAsks: 1, codeAsks: 2 });
    expect(login.notices).toEqual([RETRYING_NOTICE]);
    // One profile and one cluster, under the name, and the CLI reaches the living replica through it.
    const status = await runKeyport(['status'], { home });
    expect(status.code).toBe(0);
    expect(status.stdout.match(/> Profile /g)).toHaveLength(1);
    expect(status.stdout).toContain(`roundrobin (${address})`);
    expect((await login.profiles.listProfiles()).map((p) => p.address)).toEqual([address]);
  });

  it('sends a read once more through the name when its replica dies under it, and not a device deletion', async () => {
    const { one, other, address } = await startPair('c', 'd');
    const person = await signUpUserInProcess(other, join(work, 'signup-c'), 'remo', ['access']);
    const login = await signIn(join(work, 'home-reads'), person, address);
    const profile = await login.signedIn;
    const calls: string[] = [];
    const notices: string[] = [];
    const api = await connectAsProfile(login.profiles, profile, (method) => calls.push(method), {
      notice: (message) => notices.push(message),
    });
    try {
      expect((await api.user.getStatus({})).user).toBe(person.user);
      // A read in flight when its replica dies: sent again on a new channel to the name, to the other one.
      const listed = api.user.listMfaDevices({});
      await dieWithCallInFlight(one);
      const { devices } = await listed;
      expect(devices.map((device) => device.name)).toEqual(['otp']);
      expect(calls).toEqual(['user.getStatus', 'user.listMfaDevices', 'user.listMfaDevices']);
      expect(notices).toEqual([RETRYING_NOTICE]);
      // The next read goes there at once.
      expect((await api.user.getStatus({})).user).toBe(person.user);
      expect(calls.slice(3)).toEqual(['user.getStatus']);
      // A call that is not a read (a device deleted) is not sent again: the other one dies under it now.
      const deleting = api.user.deleteMfaDevice({ name: 'otp' }).catch((error: unknown) => error);
      await dieWithCallInFlight(other);
      const deleted = await deleting;
      expect(isTransportFailure(deleted)).toBe(true);
      expect(calls.slice(4)).toEqual(['user.deleteMfaDevice']);
      expect(notices).toHaveLength(1);
    } finally {
      api.close();
    }
  });

  it('fails as UNAVAILABLE when every address is dead, after one more try per other address', async () => {
    const { one, other, address } = await startPair('e', 'f');
    const person = await signUpUserInProcess(other, join(work, 'signup-e'), 'rina', ['access']);
    const login = await signIn(join(work, 'home-dead'), person, address, { kill: [one], freeze: other });
    const error = await login.signedIn.catch((e: unknown) => e);
    expect(isTransportFailure(error)).toBe(true);
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
    // Step 2 (passed over to the second replica, which dies under it), then step 1 once on a new channel.
    expect(login.calls).toEqual([
      'auth.getClusterInfo',
      'auth.createAuthenticateChallenge',
      'auth.login',
      'auth.createAuthenticateChallenge',
    ]);
    expect(login.notices).toEqual([RETRYING_NOTICE]);
    expect(await new ProfileStore(join(work, 'home-dead')).listProfiles()).toEqual([]);
  });
});
