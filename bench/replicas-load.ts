// The load generator of bench/replicas.bench.ts, a process of its own on loopback: `clients` concurrent
// clients, each on one TLS channel to a replica (round robin over the targets), after two untimed warm-up
// rounds, loop through alternating floor and login slices, then print one JSON line. A login: as
// `keyport login --auth passwordless` sends them (CreateAuthenticateChallenge with the passwordless scope,
// then Login with the assertion and the session's public keys), the assertion made here by a software
// authenticator from the passkey the lab soft key registered for the client's user (its private key
// read from the soft key's state file): a CTAP ceremony per login through a soft key would time the
// soft key, not the cluster. A floor operation: two bare unary calls (the gRPC health check) on the same
// channel. Bounded: `rounds` × (`floorMs` + `loginMs`) plus the warm-up, and `maxOps` per client a slice.
import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { generateSessionKey } from '../client/keystore/session-key';
import { loginCrypto } from './login-crypto';
import { makeAssertion } from './passkey-assertion';
import type { LoadUser } from './passkey-assertion';
import { cpuMs, postgresCpuMs } from './proc-cpu';
import { percentile } from './stats';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';

export interface LoadPlan {
  targets: { address: string; caPem: string; caPin: string }[];
  origin: string;
  users: LoadUser[];
  clients: number;
  /** The schedule: `rounds` times a floor slice (`floorMs` of pings), then a login slice (`loginMs`). */
  rounds: number;
  floorMs: number;
  loginMs: number;
  maxOps: number;
  /** The first signature counter this run's assertions carry (above any earlier run's). */
  signCountBase: number;
  /** Whose CPU to count per slice: the replicas' pids, and the lab PostgreSQL's directory (if any). */
  authPids: number[];
  postgresDir?: string;
  /** A passkey, for timing a login's crypto between the slices (bench/login-crypto.ts). */
  cryptoUser: LoadUser;
  rpId: string;
}

type Mode = 'ping' | 'login';

/** What one mode's slices added up to. */
export interface ModeResult {
  ops: number;
  errors: number;
  first_error?: string;
  /** The slices' wall time, each from its start until its last operation ended. */
  elapsed_ms: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
  /** CPU in the slices, in ms: this load generator's, the replicas' together, PostgreSQL's. */
  load_cpu_ms: number;
  auth_cpu_ms: number;
  postgres_cpu_ms: number;
  /** The slices' [start, end] on the machine's monotonic clock, in µs (as V8's profiles count time). */
  windows_us: [number, number][];
}

export interface LoadResult {
  ping: ModeResult;
  login: ModeResult;
  /** The median time of one login's crypto, sampled after every floor slice. */
  login_crypto_ms: number;
}

async function passwordlessLogin(
  api: ClusterApi,
  user: LoadUser,
  key: KeyObject,
  session: { sshPublicKey: string; publicKeyPem: string },
  origin: string,
  signCount: number,
): Promise<void> {
  const challenge = await api.auth.createAuthenticateChallenge({
    user: '',
    password: '',
    scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
    device: undefined,
  });
  const options = JSON.parse(challenge.webauthnRequestOptionsJson) as { challenge: string; rpId: string };
  const assertion = makeAssertion(user, key, options, origin, signCount);
  const issued = await api.auth.login({
    mfaResponse: {
      challengeId: challenge.challengeId,
      response: { $case: 'webauthnJson', value: JSON.stringify(assertion) },
    },
    sshPublicKey: session.sshPublicKey,
    tlsPublicKey: session.publicKeyPem,
    ttlSeconds: 0,
    deviceResponse: undefined,
  });
  if (issued.user !== user.user || !issued.tlsCertificate) throw new Error(`login as ${issued.user}`);
}

async function ping(api: ClusterApi): Promise<void> {
  if ((await api.health()) !== 'SERVING' || (await api.health()) !== 'SERVING')
    throw new Error('not serving');
}

const CRYPTO_SAMPLES_PER_ROUND = 40;

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** CPU so far: this process's, the replicas', PostgreSQL's (ms). */
function cpuNow(plan: LoadPlan) {
  const own = process.cpuUsage();
  return {
    load: (own.user + own.system) / 1000,
    auth: plan.authPids.reduce((sum, pid) => sum + cpuMs(pid), 0),
    postgres: postgresCpuMs(plan.postgresDir),
  };
}

/**
 * Runs the plan's schedule: floor and login slices alternate, so a machine whose speed drifts (these are
 * shared virtual machines) slows both alike, and the ratio of their rates holds. Every client finishes its
 * operation at the end of a slice before the next starts; CPU is read at the slices' edges.
 */
export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const clients = Array.from({ length: plan.clients }, (_, i) => {
    const target = plan.targets[i % plan.targets.length]!;
    const user = plan.users[i % plan.users.length]!;
    return {
      api: connectCluster({
        address: parseClusterAddress(target.address),
        caPem: target.caPem,
        caPin: target.caPin,
      }),
      user,
      key: createPrivateKey(user.privateKeyPem),
      session: generateSessionKey('ecdsa-p256'),
      signCount: plan.signCountBase + i * 1_000_000,
    };
  });
  type Client = (typeof clients)[number];
  const operation = (mode: Mode, c: Client) =>
    mode === 'ping'
      ? ping(c.api)
      : passwordlessLogin(c.api, c.user, c.key, c.session, plan.origin, ++c.signCount);
  const tallies = {
    ping: { latencies: [] as number[], errors: 0, firstError: undefined as string | undefined },
    login: { latencies: [] as number[], errors: 0, firstError: undefined as string | undefined },
  };
  const totals = {
    ping: { elapsed: 0, load: 0, auth: 0, postgres: 0, windows: [] as [number, number][] },
    login: { elapsed: 0, load: 0, auth: 0, postgres: 0, windows: [] as [number, number][] },
  };
  const slice = async (mode: Mode, ms: number) => {
    const tally = tallies[mode];
    const cpuBefore = cpuNow(plan);
    const startUs = nowUs();
    const start = performance.now();
    const deadline = start + ms;
    await Promise.all(
      clients.map(async (c) => {
        for (let n = 0; n < plan.maxOps && performance.now() < deadline; n++) {
          const at = performance.now();
          try {
            await operation(mode, c);
            tally.latencies.push(performance.now() - at);
          } catch (error) {
            tally.errors++;
            tally.firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      }),
    );
    const elapsed = performance.now() - start;
    const endUs = nowUs();
    const cpuAfter = cpuNow(plan);
    const total = totals[mode];
    total.elapsed += elapsed;
    total.load += cpuAfter.load - cpuBefore.load;
    total.auth += cpuAfter.auth - cpuBefore.auth;
    total.postgres += cpuAfter.postgres - cpuBefore.postgres;
    total.windows.push([startUs, endUs]);
  };
  const resultOf = (mode: Mode): ModeResult => {
    const { latencies, errors, firstError } = tallies[mode];
    const total = totals[mode];
    return {
      ops: latencies.length,
      errors,
      ...(firstError ? { first_error: firstError } : {}),
      elapsed_ms: Number(total.elapsed.toFixed(1)),
      per_second: Number(((latencies.length * 1000) / total.elapsed).toFixed(1)),
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      load_cpu_ms: Number(total.load.toFixed(1)),
      auth_cpu_ms: Number(total.auth.toFixed(1)),
      postgres_cpu_ms: Number(total.postgres.toFixed(1)),
      windows_us: total.windows,
    };
  };
  const crypto = loginCrypto(plan.cryptoUser, { rpId: plan.rpId, origin: plan.origin });
  const cryptoSamples: number[] = [];
  try {
    // Warm-up: channels connected, code paths compiled, on both sides (two rounds of each mode).
    for (let round = 0; round < 2; round++) {
      await Promise.all(clients.map((c) => operation('ping', c)));
      await Promise.all(clients.map((c) => operation('login', c)));
    }
    crypto.sample(CRYPTO_SAMPLES_PER_ROUND);
    for (let round = 0; round < plan.rounds; round++) {
      await slice('ping', plan.floorMs);
      cryptoSamples.push(...crypto.sample(CRYPTO_SAMPLES_PER_ROUND));
      await slice('login', plan.loginMs);
    }
    return {
      ping: resultOf('ping'),
      login: resultOf('login'),
      login_crypto_ms: Number(percentile(cryptoSamples, 50).toFixed(3)),
    };
  } finally {
    for (const c of clients) c.api.close();
  }
}

// As a process: the plan's file as the argument, the result as the last line of standard output.
if (process.argv[1]?.endsWith('replicas-load.ts')) {
  process.removeAllListeners('warning');
  const plan = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadPlan;
  const result = await runLoad(plan);
  console.log(JSON.stringify(result));
  process.exit(0);
}
