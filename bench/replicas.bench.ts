// Passwordless logins per second at 16 concurrent clients, on SQLite and on PostgreSQL behind 1 and 2
// keyport-auth replicas (lab/replicas.ts), against a floor measured in the same run on the same channels:
// two bare unary calls per login (the login's two round trips; the gRPC health check, which reads no
// storage: auth/health.ts), plus the deliberate
// crypto of one login (one assertion verify, the SSH and X.509 certificate signatures), timed here on one
// core and shared by the replicas. The load comes from bench/replicas-load.ts, a process of its own on
// loopback, bounded in time (BENCH_REPLICAS_SECONDS, 10 s per configuration). The passkeys are
// registered by the lab soft key (one key holds the 16 users' passkeys); the load generator signs the
// assertions from their keys in software (see replicas-load.ts for why).
// Per login it also prints, from keyport-auth itself: the SQL statements by name and the database round
// trips (KEYPORT_SQL_COUNT=1, auth/storage/sql-count.ts), every write named (a statement with CTEs by each
// of its parts), and the CPU time of the auth process(es) (/proc/PID/stat utime + stime over the run).
// Then, on the two replicas, how long a role change and a user lock made through one take to be enforced
// by the other (bench/replicas-propagation.ts; target 1 s).
// BENCH_REPLICAS_ONLY=sqlite,postgresql-1,postgresql-2 picks configurations (the propagation needs the
// last). BENCH_REPLICAS_PROFILE=1 runs V8's profiler in keyport-auth during each login run and prints where
// its main thread spent CPU per login (bench/cpu-profile.ts); the profiler's own cost is in the numbers.
import { spawn } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateKey, newTlsCaCertificatePem, authoritiesFromKeys } from '../auth/ca/authority';
import { parseSshPublicKey } from '../auth/ca/ssh';
import { parseClientPublicKey } from '../auth/ca/spki';
import { issueSessionCertificates } from '../auth/certificates';
import type { ServiceContext } from '../auth/context';
import type { MfaDeviceRow } from '../auth/storage/store';
import { writesIn } from '../auth/storage/sql-count';
import type { SqlCountRecord } from '../auth/storage/sql-count';
import { verifyAssertion } from '../auth/webauthn';
import { generateSessionKey } from '../client/keystore/session-key';
import { openClusterDb, repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { signUpWithLabKey } from '../lab/connect';
import { startLabPostgres } from '../lab/postgres';
import { createReplicaSet, queryRows } from '../lab/replicas';
import { startSoftKey } from '../lab/security-key/soft-key';
import { readState } from '../lab/security-key/state';
import { PROFILED_ENV, printProfileBreakdown, profileBreakdown, startProfiling } from './cpu-profile';
import type { ProfileBreakdown } from './cpu-profile';
import { makeAssertion } from './replicas-load';
import type { LoadPlan, LoadResult, LoadUser } from './replicas-load';
import { benchPropagation } from './replicas-propagation';
import { median } from './stats';

const CLIENTS = 16;
const SECONDS = Number(process.env.BENCH_REPLICAS_SECONDS ?? 10);
const FLOOR_SECONDS = Math.max(2, SECONDS / 2);
const TARGET_RATIO = 0.5;
const PIN = '2468';
const RP_ID = 'localhost';
const ORIGIN = `https://${RP_ID}`;
const PUBLIC_ADDR = 'localhost:3025';
const CLK_TCK = 100;
const ONLY = new Set(
  (process.env.BENCH_REPLICAS_ONLY ?? 'sqlite,postgresql-1,postgresql-2').split(',').map((s) => s.trim()),
);
const PROFILE = process.env.BENCH_REPLICAS_PROFILE === '1';
/** keyport-auth's environment: ready to be profiled, when asked for. */
const authEnv = PROFILE ? PROFILED_ENV : undefined;

/** The cluster's config: passkeys on, and no per-address limit in the way of one loopback load generator. */
const authServiceYaml = [
  'auth_service:',
  '  authentication:',
  '    type: local',
  '    second_factors: [webauthn]',
  '    allow_passwordless: true',
  '    webauthn:',
  `      rp_id: ${RP_ID}`,
  '  rate_limit:',
  '    per_address: 1000000',
  '    per_user: 1000000',
  '',
].join('\n');

const userName = (i: number) => `bench${String(i).padStart(2, '0')}`;

/** utime + stime of `pid`, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** utime + stime of the lab PostgreSQL: the postmaster, its live backends, and the ones it reaped, in ms. */
function postgresCpuMs(dataDir: string | undefined): number {
  if (!dataDir) return 0;
  const postmaster = Number(readFileSync(join(dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const fieldsOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const own = fieldsOf(postmaster);
  // utime, stime, cutime, cstime: fields 14–17 of /proc/PID/stat (11–14 after the command).
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = fieldsOf(Number(entry));
      if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** The auth process's statement totals so far (it writes them on SIGUSR2). */
async function sqlTotals(cluster: LabCluster): Promise<SqlCountRecord> {
  const lines = () =>
    cluster
      .output()
      .split('\n')
      .filter((l) => l.includes('keyport-sql {'));
  const before = lines().length;
  process.kill(cluster.process.pid ?? 0, 'SIGUSR2');
  for (let waited = 0; waited < 5000; waited += 20) {
    const now = lines();
    if (now.length > before) {
      const line = now[now.length - 1] ?? '';
      return JSON.parse(line.slice(line.indexOf('keyport-sql ') + 'keyport-sql '.length)) as SqlCountRecord;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('keyport-auth wrote no keyport-sql line: is KEYPORT_SQL_COUNT=1 set?');
}

async function runLoadProcess(plan: LoadPlan, work: string): Promise<LoadResult> {
  const planFile = join(work, `plan-${randomBytes(4).toString('hex')}.json`);
  await writeFile(planFile, JSON.stringify(plan));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'bench/replicas-load.ts'), planFile],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    // Bounded: the run, its warm-up, and start-up; then it is stopped.
    const timer = setTimeout(() => child.kill('SIGKILL'), plan.durationMs + 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{'))
        reject(new Error(`load generator exited ${code}:\n${out}${err}`));
      else resolve(JSON.parse(last) as LoadResult);
    });
  });
}

/** The passkeys the soft key holds for bench00…, by user. */
function passkeysOf(statePath: string): LoadUser[] {
  const state = readState(statePath);
  if (!state) throw new Error(`no soft key state at ${statePath}`);
  return Array.from({ length: CLIENTS }, (_, i) => {
    const credential = state.credentials.find((c) => c.rk && c.userName === userName(i));
    if (!credential?.userId) throw new Error(`the soft key holds no passkey for ${userName(i)}`);
    return {
      user: userName(i),
      credentialId: credential.id,
      userHandle: credential.userId,
      privateKeyPem: credential.privateKeyPem,
    };
  });
}

async function signUpAll(cluster: LabCluster, keySocket: string): Promise<void> {
  for (let i = 0; i < CLIENTS; i++) {
    await signUpWithLabKey(cluster, {
      user: userName(i),
      roles: ['access'],
      password: `${userName(i)}-password-123`,
      keySocket,
      pin: PIN,
    });
  }
}

/** The deliberate crypto of one login, on one core: the assertion verify and the two certificates. */
async function loginCryptoMs(user: LoadUser, device: MfaDeviceRow): Promise<number> {
  const sshCa = generatePrivateKey('Ed25519');
  const tlsCa = generatePrivateKey('ECDSA P-256');
  const authorities = await authoritiesFromKeys(
    'bench-replicas',
    sshCa,
    tlsCa,
    await newTlsCaCertificatePem('bench-replicas', tlsCa),
  );
  const ctx = { now: () => Date.now(), authorities } as unknown as ServiceContext;
  const session = generateSessionKey('ecdsa-p256');
  const keys = {
    ssh: parseSshPublicKey(session.sshPublicKey),
    tls: parseClientPublicKey(session.publicKeyPem),
  };
  const key = createPrivateKey(user.privateKeyPem);
  const rp = { rpId: RP_ID, rpName: 'bench-replicas', allowedCas: [], deniedCas: [] };
  const samples: number[] = [];
  for (let i = 0; i < 300; i++) {
    const challenge = randomBytes(32).toString('base64url');
    const assertion = makeAssertion(user, key, { challenge, rpId: RP_ID }, ORIGIN, i + 1);
    const start = performance.now();
    const verified = await verifyAssertion({
      rp,
      response: assertion,
      expectedChallenge: challenge,
      device: { ...device, webauthn_sign_count: 0 },
      requireUserVerification: true,
    });
    if (!verified.ok) throw new Error('the floor assertion did not verify');
    await issueSessionCertificates(
      ctx,
      { user: user.user, roles: ['access'], logins: [user.user], mfaVerified: true, ttlSeconds: 3600 },
      keys,
    );
    samples.push(performance.now() - start);
  }
  return median(samples.slice(50));
}

interface Measured {
  backend: string;
  replicas: number;
  logins_per_second: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  floor_per_second: number;
  floor_pings_per_second: number;
  /**
   * keyport-auth's CPU per call of the floor, and PostgreSQL's (the health check reads no storage: the
   * latter shows only what PostgreSQL spends on its own meanwhile).
   */
  floor_cpu_ms_per_call: number;
  floor_postgres_cpu_ms_per_call: number;
  ratio: number;
  within_target: boolean;
  cpu_ms_per_login: number;
  /** PostgreSQL's CPU (postmaster and backends) per login; 0 on SQLite, whose work is in cpu_ms_per_login. */
  postgres_cpu_ms_per_login: number;
  statements_per_login: number;
  transactions_per_login: number;
  round_trips_per_login: number;
  writes_per_login: number;
  statements: Record<string, number>;
  /** Where each replica's main thread spent CPU per login (BENCH_REPLICAS_PROFILE), once it stopped. */
  profile?: ProfileBreakdown[];
  /** The same for one call of the floor. */
  floor_call_profile?: ProfileBreakdown[];
}

let signCountBase = 1000;

async function measure(
  backend: string,
  replicas: LabCluster[],
  users: LoadUser[],
  cryptoMs: number,
  work: string,
  postgresDir?: string,
): Promise<Measured> {
  const caPem = (
    JSON.parse(await readFile(join(replicas[0]!.dataDir, 'admin-identity.json'), 'utf8')) as {
      caCertPem: string;
    }
  ).caCertPem;
  const targets = replicas.map((r) => ({ address: r.address, caPem, caPin: r.caPin }));
  const base = { targets, origin: ORIGIN, users, clients: CLIENTS, maxOps: 100_000 };
  const floorCpuBefore = replicas.map((r) => cpuMs(r.process.pid ?? 0));
  const floorPostgresBefore = postgresCpuMs(postgresDir);
  const floorProfiling = PROFILE
    ? await Promise.all(replicas.map((r) => startProfiling(r.process, r.output)))
    : undefined;
  const floor = await runLoadProcess(
    { ...base, mode: 'ping', durationMs: FLOOR_SECONDS * 1000, signCountBase: 0 },
    work,
  );
  // Every call the floor made, warm-up included (2 rounds of 2 calls per client).
  const floorCalls = 2 * (floor.ops + floor.errors) + 4 * CLIENTS;
  const floorCpu = replicas.reduce((s, r, i) => s + cpuMs(r.process.pid ?? 0) - floorCpuBefore[i]!, 0);
  const floorPostgresCpu = postgresCpuMs(postgresDir) - floorPostgresBefore;
  const floorProfiles = floorProfiling ? await Promise.all(floorProfiling.map((p) => p.stop())) : undefined;
  const sqlBefore = await Promise.all(replicas.map(sqlTotals));
  const cpuBefore = replicas.map((r) => cpuMs(r.process.pid ?? 0));
  const postgresBefore = postgresCpuMs(postgresDir);
  const profiling = PROFILE
    ? await Promise.all(replicas.map((r) => startProfiling(r.process, r.output)))
    : undefined;
  const run = await runLoadProcess(
    { ...base, mode: 'login', durationMs: SECONDS * 1000, signCountBase },
    work,
  );
  signCountBase += CLIENTS * 1_000_000 + 1000;
  const cpuAfter = replicas.map((r) => cpuMs(r.process.pid ?? 0));
  const postgresAfter = postgresCpuMs(postgresDir);
  // Stopped after the CPU was read: sending the profile costs keyport-auth CPU of its own.
  const profiles = profiling ? await Promise.all(profiling.map((p) => p.stop())) : undefined;
  const sqlAfter = await Promise.all(replicas.map(sqlTotals));
  // Every login the generator started, warm-up (2 per client) included, ended inside the two snapshots.
  const logins = run.ops + run.errors + 2 * CLIENTS;
  const perLogin = (n: number) => Number((n / logins).toFixed(2));
  const totals: Record<string, number> = {};
  let roundTrips = 0;
  sqlAfter.forEach((after, i) => {
    roundTrips += after.round_trips - sqlBefore[i]!.round_trips;
    for (const [name, n] of Object.entries(after.statements)) {
      totals[name] = (totals[name] ?? 0) + n - (sqlBefore[i]!.statements[name] ?? 0);
    }
  });
  const statements = Object.fromEntries(
    Object.entries(totals)
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => [name, perLogin(n)]),
  );
  const control = (name: string) =>
    /^(begin|commit|rollback|savepoint|release|start transaction)$/.test(name);
  const sum = (pick: (name: string) => boolean) =>
    Object.entries(totals)
      .filter(([name]) => pick(name))
      .reduce((s, [, n]) => s + n, 0);
  // A statement with CTEs counts each write in it (`update challenges + select mfa_devices`: one).
  const writes = Object.entries(totals).reduce((s, [name, n]) => s + writesIn(name) * n, 0);
  // The floor: the two round trips at the rate the same 16 clients get them, plus the crypto, which the
  // replicas do side by side.
  const floorPerSecond = 1000 / (1000 / floor.per_second + cryptoMs / replicas.length);
  const ratio = run.per_second / floorPerSecond;
  const measured: Measured = {
    backend,
    replicas: replicas.length,
    logins_per_second: run.per_second,
    p50_ms: run.p50_ms,
    p99_ms: run.p99_ms,
    errors: run.errors,
    ...(run.first_error ? { first_error: run.first_error } : {}),
    floor_per_second: Number(floorPerSecond.toFixed(1)),
    floor_pings_per_second: floor.per_second,
    floor_cpu_ms_per_call: Number((floorCpu / floorCalls).toFixed(3)),
    floor_postgres_cpu_ms_per_call: Number((floorPostgresCpu / floorCalls).toFixed(3)),
    ratio: Number(ratio.toFixed(2)),
    within_target: ratio >= TARGET_RATIO && run.errors === 0,
    cpu_ms_per_login: Number((cpuAfter.reduce((s, v, i) => s + v - cpuBefore[i]!, 0) / logins).toFixed(2)),
    postgres_cpu_ms_per_login: Number(((postgresAfter - postgresBefore) / logins).toFixed(2)),
    statements_per_login: perLogin(sum((n) => !control(n))),
    transactions_per_login: perLogin(sum((n) => n === 'begin' || n === 'start transaction')),
    round_trips_per_login: perLogin(roundTrips),
    writes_per_login: perLogin(writes),
    statements,
  };
  if (profiles) measured.profile = profiles.map((p) => profileBreakdown(p, logins / replicas.length));
  if (floorProfiles) {
    measured.floor_call_profile = floorProfiles.map((p) => profileBreakdown(p, floorCalls / replicas.length));
  }
  return measured;
}

function printTable(m: Measured): void {
  m.floor_call_profile?.forEach((p, i) =>
    printProfileBreakdown(`${m.backend} x${m.replicas} replica ${i + 1}, per floor call`, p),
  );
  m.profile?.forEach((p, i) => printProfileBreakdown(`${m.backend} x${m.replicas} replica ${i + 1}`, p));
  console.log(
    `${m.backend} x${m.replicas}: ${m.logins_per_second} logins/s (p50 ${m.p50_ms} ms, p99 ${m.p99_ms} ms), ` +
      `floor ${m.floor_per_second}/s, ratio ${m.ratio}, CPU per login ${m.cpu_ms_per_login} ms in keyport-auth` +
      ` (per floor call ${m.floor_cpu_ms_per_call} ms` +
      (m.floor_postgres_cpu_ms_per_call ? ` + ${m.floor_postgres_cpu_ms_per_call} ms in PostgreSQL)` : ')') +
      (m.postgres_cpu_ms_per_login ? ` + ${m.postgres_cpu_ms_per_login} ms in PostgreSQL` : '') +
      '; per login:',
  );
  for (const [name, n] of Object.entries(m.statements)) {
    const written = writesIn(name);
    const kind = written === 0 ? '' : written === 1 ? 'write' : `${written} writes`;
    console.log(`    ${name.padEnd(48)} ${n.toFixed(2).padStart(6)} ${kind}`);
  }
  console.log(
    `    ${'statements / writes / round trips'.padEnd(48)} ${m.statements_per_login} / ${m.writes_per_login} / ${m.round_trips_per_login}`,
  );
}

/** A run without the two replicas (BENCH_REPLICAS_ONLY): its configurations, and no propagation. */
function partialSummary(results: Measured[]) {
  console.log(JSON.stringify({ bench: 'passwordless logins/s, 16 clients (partial)', results }));
  return { results, within_target: results.every((r) => r.within_target) };
}

export async function benchReplicas() {
  const previousCount = process.env['KEYPORT_SQL_COUNT'];
  process.env['KEYPORT_SQL_COUNT'] = '1';
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-replicas-'));
  const results: Measured[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  try {
    // SQLite: one keyport-auth, its own soft key holding the 16 passkeys.
    const sqliteKey = await startSoftKey({
      socketPath: join(work, 's.sock'),
      statePath: join(work, 's.json'),
      touch: 'auto',
      pin: PIN,
    });
    stops.push(() => sqliteKey.stop());
    const single = await startLabCluster({
      clusterName: 'bench-replicas',
      configYaml: authServiceYaml.replace('auth_service:\n', 'auth_service:\n  public_addr: localhost:0\n'),
      ...(authEnv ? { env: authEnv } : {}),
    });
    stops.push(() => single.stop());
    await signUpAll(single, sqliteKey.socketPath);
    const sqliteUsers = passkeysOf(sqliteKey.statePath);
    const db = openClusterDb(single);
    const device = db.prepare('SELECT * FROM mfa_devices WHERE user = ?').get(userName(0)) as
      MfaDeviceRow | undefined;
    db.close();
    if (!device) throw new Error(`no passkey row for ${userName(0)}`);
    const cryptoMs = await loginCryptoMs(sqliteUsers[0]!, device);
    if (ONLY.has('sqlite')) {
      const onSqlite = await measure('sqlite', [single], sqliteUsers, cryptoMs, work);
      results.push(onSqlite);
      printTable(onSqlite);
    }
    await stops.pop()?.();
    if (!ONLY.has('postgresql-1') && !ONLY.has('postgresql-2')) {
      return partialSummary(results);
    }

    // PostgreSQL: replica a, then a and b, on one database; the passkeys on a second soft key.
    const pgKey = await startSoftKey({
      socketPath: join(work, 'p.sock'),
      statePath: join(work, 'p.json'),
      touch: 'auto',
      pin: PIN,
    });
    stops.push(() => pgKey.stop());
    const postgres = await startLabPostgres();
    stops.push(() => postgres.stop());
    const set = await createReplicaSet({
      work,
      connString: postgres.connString,
      clusterName: 'bench-replicas',
      publicAddr: PUBLIC_ADDR,
      extraYaml: authServiceYaml,
      ...(authEnv ? { env: authEnv } : {}),
    });
    const a = await set.start('a');
    stops.push(() => a.stop());
    await signUpAll(a, pgKey.socketPath);
    const pgUsers = passkeysOf(pgKey.statePath);
    const stored = await queryRows<{ n: string }>(
      postgres.connString,
      'SELECT count(*) AS n FROM mfa_devices',
    );
    if (Number(stored[0]?.n) < CLIENTS) throw new Error('the passkeys are not in PostgreSQL');
    if (ONLY.has('postgresql-1')) {
      const onOne = await measure('postgresql', [a], pgUsers, cryptoMs, work, postgres.dataDir);
      results.push(onOne);
      printTable(onOne);
    }
    if (!ONLY.has('postgresql-2')) {
      return partialSummary(results);
    }
    const b = await set.start('b');
    stops.push(() => b.stop());
    const onTwo = await measure('postgresql', [a, b], pgUsers, cryptoMs, work, postgres.dataDir);
    results.push(onTwo);
    printTable(onTwo);
    const propagation = await benchPropagation({
      a,
      b,
      user: pgUsers[0]!,
      origin: ORIGIN,
      signCount: signCountBase,
    });
    signCountBase += 1000;

    const line = {
      bench: 'passwordless logins/s, 16 clients, SQLite and PostgreSQL replicas',
      floor:
        '2 bare unary calls (grpc.health.v1 Check) per login on the same channels at 16 clients + assertion verify + SSH and X.509 signatures (shared by the replicas)',
      login_crypto_ms: Number(cryptoMs.toFixed(3)),
      seconds_per_configuration: SECONDS,
      clients: CLIENTS,
      target_ratio: TARGET_RATIO,
      results,
      propagation,
    };
    console.log(JSON.stringify(line));
    return { ...line, within_target: results.every((r) => r.within_target) && propagation.within_target };
  } finally {
    while (stops.length > 0) await stops.pop()?.();
    if (previousCount === undefined) delete process.env['KEYPORT_SQL_COUNT'];
    else process.env['KEYPORT_SQL_COUNT'] = previousCount;
    await rm(work, { recursive: true, force: true });
  }
}
