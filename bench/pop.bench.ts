// The cost of proof of possession per authenticated call (proto/pop.ts, auth/pop.ts), against its floor
// measured in the same run: the same call (user.ping) over mTLS. One keyport-auth, one session with a
// software P-256 key, one channel per mode (mTLS: the key in the TLS handshake; PoP: no client
// certificate, the certificate and a proof signed by the key on every call, its nonce spent in the
// database: SQLite, then a lab PostgreSQL). Sequential calls give the latency; 16 concurrent callers on
// the channel give the throughput.
// The CPU per call is keyport-auth's own (/proc/PID/stat utime + stime over the measured calls). Modes
// alternate over several rounds, so a noisy neighbour hits both alike. The card's cost is bench/piv.bench.ts's.
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { generateSessionKey } from '../client/keystore/session-key';
import type { SessionSigner } from '../client/keystore/signer';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { nextTotpCode, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import { postgresStorageYaml } from '../lab/replicas';
import { cpuMs } from './proc-cpu';
import { median, percentile, report, timeEach } from './stats';

const SEQUENTIAL_CALLS = Number(process.env.BENCH_POP_CALLS ?? 300);
const CONCURRENT_CALLS = Number(process.env.BENCH_POP_CONCURRENT_CALLS ?? 1600);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.BENCH_POP_ROUNDS ?? 3);

interface Run {
  /** Per-call latencies, ms. */
  samples: number[];
  wallMs: number;
  cpuMs: number;
}

async function sequential(api: ClusterApi, pid: number): Promise<Run> {
  const cpu = cpuMs(pid);
  const start = performance.now();
  const samples = await timeEach(SEQUENTIAL_CALLS, () => api.user.ping({}));
  return { samples, wallMs: performance.now() - start, cpuMs: cpuMs(pid) - cpu };
}

async function concurrent(api: ClusterApi, pid: number): Promise<Run> {
  const samples: number[] = [];
  let issued = 0;
  const cpu = cpuMs(pid);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < CONCURRENT_CALLS) {
        issued++;
        const at = performance.now();
        await api.user.ping({});
        samples.push(performance.now() - at);
      }
    }),
  );
  return { samples, wallMs: performance.now() - start, cpuMs: cpuMs(pid) - cpu };
}

interface Summary {
  calls_per_second: number;
  p50_ms: number;
  p99_ms: number;
  cpu_ms_per_call: number;
}

function summarize(runs: Run[]): Summary & { samples: number[] } {
  const samples = runs.flatMap((r) => r.samples);
  const wall = runs.reduce((sum, r) => sum + r.wallMs, 0);
  const cpu = runs.reduce((sum, r) => sum + r.cpuMs, 0);
  return {
    samples,
    calls_per_second: Math.round((samples.length * 1000) / wall),
    p50_ms: Number(median(samples).toFixed(3)),
    p99_ms: Number(percentile(samples, 99).toFixed(3)),
    cpu_ms_per_call: Number((cpu / samples.length).toFixed(3)),
  };
}

const ratio = (measured: number, floor: number) => Number((measured / floor).toFixed(2));

/** On SQLite, then on a lab PostgreSQL (the nonce's write is the part that depends on the database). */
export async function benchPop() {
  const onSqlite = await benchPopOn('sqlite');
  const postgres = await startLabPostgres();
  try {
    const onPostgres = await benchPopOn('postgresql', postgresStorageYaml(postgres.connString));
    return { sqlite: onSqlite, postgresql: onPostgres };
  } finally {
    await postgres.stop();
  }
}

async function benchPopOn(storage: 'sqlite' | 'postgresql', configYaml?: string) {
  const cluster = await startLabCluster({
    clusterName: 'bench-pop',
    ...(configYaml ? { configYaml } : {}),
  });
  const home = await mkdtemp(join(tmpdir(), 'keyport-bench-pop-'));
  const apis: ClusterApi[] = [];
  try {
    const { caCertPem: caPem } = JSON.parse(
      await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8'),
    ) as { caCertPem: string };
    const address = parseClusterAddress(cluster.address);
    const person = await signUpUserInProcess(cluster, home, 'popbench', ['access']);
    const anonymous = connectCluster({ address, caPem, caPin: cluster.caPin });
    const key = generateSessionKey('ecdsa-p256');
    const challenge = await anonymous.auth.createAuthenticateChallenge({
      user: person.user,
      password: person.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const session = await anonymous.auth.login({
      mfaResponse: {
        challengeId: challenge.challengeId,
        response: { $case: 'totp', value: { code: nextTotpCode(person.totpSecret) } },
      },
      sshPublicKey: key.sshPublicKey,
      tlsPublicKey: key.publicKeyPem,
      ttlSeconds: 3600,
    });
    anonymous.close();

    const privateKey = createPrivateKey(key.privateKeyPem);
    const signer: SessionSigner = {
      source: 'file',
      algorithm: 'ecdsa-p256',
      publicKeyPem: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
      sshPublicKey: key.sshPublicKey,
      exportable: true,
      sign: async (data) => sign('sha256', data, privateKey),
    };
    const modes = {
      mtls: connectCluster({
        address,
        caPem,
        caPin: cluster.caPin,
        clientKeyPem: key.privateKeyPem,
        clientCertPem: session.tlsCertificate,
      }),
      pop: connectCluster({
        address,
        caPem,
        caPin: cluster.caPin,
        signer,
        certificatePem: session.tlsCertificate,
        proofOfPossession: true,
      }),
    };
    apis.push(modes.mtls, modes.pop);
    const pid = cluster.process.pid ?? 0;
    for (const api of Object.values(modes)) for (let i = 0; i < 100; i++) await api.user.ping({});

    const runs = {
      mtls: { seq: [] as Run[], conc: [] as Run[] },
      pop: { seq: [] as Run[], conc: [] as Run[] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of round % 2 ? (['pop', 'mtls'] as const) : (['mtls', 'pop'] as const)) {
        runs[mode].seq.push(await sequential(modes[mode], pid));
        runs[mode].conc.push(await concurrent(modes[mode], pid));
      }
    }
    const clientSign = await timeEach(200, () => signer.sign(Buffer.alloc(200, 1)));

    const seq = { mtls: summarize(runs.mtls.seq), pop: summarize(runs.pop.seq) };
    const conc = { mtls: summarize(runs.mtls.conc), pop: summarize(runs.pop.conc) };
    const strip = ({ samples: _samples, ...rest }: Summary & { samples: number[] }) => rest;
    const line = report('pop', seq.pop.samples, 'the same ping over mTLS', seq.mtls.samples, {
      storage,
      key: 'software ECDSA P-256',
      sequential: { mtls: strip(seq.mtls), pop: strip(seq.pop) },
      [`concurrent_${CONCURRENCY}`]: { mtls: strip(conc.mtls), pop: strip(conc.pop) },
      ratio_sequential_p50: ratio(seq.pop.p50_ms, seq.mtls.p50_ms),
      ratio_concurrent_time_per_call: ratio(conc.mtls.calls_per_second, conc.pop.calls_per_second),
      ratio_concurrent_p50: ratio(conc.pop.p50_ms, conc.mtls.p50_ms),
      ratio_cpu_per_call: ratio(
        seq.pop.cpu_ms_per_call + conc.pop.cpu_ms_per_call,
        seq.mtls.cpu_ms_per_call + conc.mtls.cpu_ms_per_call,
      ),
      // What a proof adds, in absolute terms (steadier than ratios on a shared machine).
      added_p50_ms_sequential: Number((seq.pop.p50_ms - seq.mtls.p50_ms).toFixed(3)),
      added_cpu_ms_per_call: {
        sequential: Number((seq.pop.cpu_ms_per_call - seq.mtls.cpu_ms_per_call).toFixed(3)),
        concurrent: Number((conc.pop.cpu_ms_per_call - conc.mtls.cpu_ms_per_call).toFixed(3)),
      },
      client_sign_p50_ms: Number(median(clientSign).toFixed(3)),
    });
    console.log(
      `pop on ${storage}: sequential ${seq.mtls.calls_per_second} → ${seq.pop.calls_per_second} calls/s (p50 ${seq.mtls.p50_ms} → ${seq.pop.p50_ms} ms), ` +
        `${CONCURRENCY} concurrent ${conc.mtls.calls_per_second} → ${conc.pop.calls_per_second} calls/s (p50 ${conc.mtls.p50_ms} → ${conc.pop.p50_ms} ms), ` +
        `keyport-auth CPU per call ${seq.mtls.cpu_ms_per_call}/${conc.mtls.cpu_ms_per_call} → ${seq.pop.cpu_ms_per_call}/${conc.pop.cpu_ms_per_call} ms (sequential/concurrent), mTLS → PoP`,
    );
    return line;
  } finally {
    for (const api of apis) api.close();
    await cluster.stop();
    await rm(home, { recursive: true, force: true });
  }
}
