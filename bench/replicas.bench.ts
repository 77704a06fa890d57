// Passwordless logins per second at 16 concurrent clients, on SQLite and on PostgreSQL behind 1 and 2
// keyport-auth replicas (lab/replicas.ts), against a floor measured in the same run on the same channels:
// two bare unary calls per login (the login's two round trips; the gRPC health check, which reads no
// storage: auth/health.ts), plus the deliberate crypto of one login and nothing around it (one ES256
// verify, the SSH and X.509 certificate signatures: bench/login-crypto.ts), timed synchronously on one
// core between the slices and shared by the replicas. The load comes from bench/replicas-load.ts, a process of its own on
// loopback, bounded in time: BENCH_REPLICAS_SECONDS of logins per configuration (10 s), in 5 login slices
// each after a floor slice half as long, so the floor and the logins see the same machine (a shared VM's
// speed drifts by tens of percent within a minute, which measuring one after the other read as a
// ratio). The passkeys are
// registered by the lab soft key (one key holds the 16 users' passkeys); the load generator signs the
// assertions from their keys in software (bench/passkey-assertion.ts says why).
// Per login it also prints, from keyport-auth itself: the SQL statements by name and the database round
// trips (KEYPORT_SQL_COUNT=1, auth/storage/sql-count.ts), every write named (a statement with CTEs by each
// of its parts), and the CPU time of the auth process(es), PostgreSQL and the load generator in the slices
// (/proc/PID/stat utime + stime, read by the load generator at each slice's edges).
// Then, on the two replicas, how long a role change and a user lock made through one take to be enforced
// by the other (bench/replicas-propagation.ts; target 1 s).
// BENCH_REPLICAS_ONLY=sqlite,postgresql-1,postgresql-2 picks configurations (the propagation needs the
// last). BENCH_REPLICAS_PROFILE=1 runs V8's profiler in keyport-auth during each run and prints where its
// main thread spent CPU per login and per floor call (bench/cpu-profile.ts: the samples inside each kind of
// slice); the profiler's own cost is in the numbers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writesIn } from '../auth/storage/sql-count';
import type { SqlCountRecord } from '../auth/storage/sql-count';
import { repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { signUpWithLabKey } from '../lab/connect';
import { startLabPostgres } from '../lab/postgres';
import { createReplicaSet, queryRows } from '../lab/replicas';
import { startSoftKey } from '../lab/security-key/soft-key';
import { readState } from '../lab/security-key/state';
import { PROFILED_ENV, printProfileBreakdown, profileBreakdown, startProfiling } from './cpu-profile';
import type { ProfileBreakdown } from './cpu-profile';
import type { LoadUser } from './passkey-assertion';
import type { LoadPlan, LoadResult } from './replicas-load';
import { benchPropagation } from './replicas-propagation';

const CLIENTS = 16;
// Each configuration: ROUNDS × (a floor slice of FLOOR_SLICE_MS, then a login slice twice as long).
const SECONDS = Number(process.env.BENCH_REPLICAS_SECONDS ?? 10);
const ROUNDS = 5;
const LOGIN_SLICE_MS = Math.max(400, (SECONDS * 1000) / ROUNDS);
const FLOOR_SLICE_MS = LOGIN_SLICE_MS / 2;
const TARGET_RATIO = 0.5;
const PIN = '2468';
const RP_ID = 'localhost';
const ORIGIN = `https://${RP_ID}`;
const PUBLIC_ADDR = 'localhost:3025';
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
    // Bounded: the slices, the warm-up, and start-up; then it is stopped.
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      plan.rounds * (plan.floorMs + plan.loginMs) + 60_000,
    );
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

interface Measured {
  backend: string;
  replicas: number;
  logins_per_second: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  floor_per_second: number;
  floor_pings_per_second: number;
  /** One login's crypto, timed between the slices (the floor's second part). */
  login_crypto_ms: number;
  /**
   * keyport-auth's CPU per call of the floor, and PostgreSQL's (the health check reads no storage: the
   * latter shows only what PostgreSQL spends on its own meanwhile).
   */
  floor_cpu_ms_per_call: number;
  floor_postgres_cpu_ms_per_call: number;
  /** The load generator's CPU per floor call, and per login. */
  floor_load_cpu_ms_per_call: number;
  load_cpu_ms_per_login: number;
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
  cryptoUser: LoadUser,
  work: string,
  postgresDir?: string,
): Promise<Measured> {
  const caPem = (
    JSON.parse(await readFile(join(replicas[0]!.dataDir, 'admin-identity.json'), 'utf8')) as {
      caCertPem: string;
    }
  ).caCertPem;
  const targets = replicas.map((r) => ({ address: r.address, caPem, caPin: r.caPin }));
  const sqlBefore = await Promise.all(replicas.map(sqlTotals));
  const profiling = PROFILE
    ? await Promise.all(replicas.map((r) => startProfiling(r.process, r.output)))
    : undefined;
  const {
    ping: floor,
    login: run,
    login_crypto_ms: cryptoMs,
  } = await runLoadProcess(
    {
      targets,
      origin: ORIGIN,
      users,
      clients: CLIENTS,
      maxOps: 100_000,
      rounds: ROUNDS,
      floorMs: FLOOR_SLICE_MS,
      loginMs: LOGIN_SLICE_MS,
      signCountBase,
      authPids: replicas.map((r) => r.process.pid ?? 0),
      cryptoUser,
      rpId: RP_ID,
      ...(postgresDir ? { postgresDir } : {}),
    },
    work,
  );
  signCountBase += CLIENTS * 1_000_000 + 1000;
  const profiles = profiling ? await Promise.all(profiling.map((p) => p.stop())) : undefined;
  const sqlAfter = await Promise.all(replicas.map(sqlTotals));
  // Every login the generator started, warm-up (2 per client) included, made the statements counted; the
  // CPU was read at the slices' edges, so it is per login (and per floor call) of the slices alone.
  const logins = run.ops + run.errors + 2 * CLIENTS;
  const sliceLogins = Math.max(1, run.ops + run.errors);
  const floorCalls = Math.max(1, 2 * (floor.ops + floor.errors));
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
    login_crypto_ms: cryptoMs,
    floor_cpu_ms_per_call: Number((floor.auth_cpu_ms / floorCalls).toFixed(3)),
    floor_postgres_cpu_ms_per_call: Number((floor.postgres_cpu_ms / floorCalls).toFixed(3)),
    floor_load_cpu_ms_per_call: Number((floor.load_cpu_ms / floorCalls).toFixed(3)),
    ratio: Number(ratio.toFixed(2)),
    within_target: ratio >= TARGET_RATIO && run.errors === 0,
    cpu_ms_per_login: Number((run.auth_cpu_ms / sliceLogins).toFixed(2)),
    postgres_cpu_ms_per_login: Number((run.postgres_cpu_ms / sliceLogins).toFixed(2)),
    load_cpu_ms_per_login: Number((run.load_cpu_ms / sliceLogins).toFixed(2)),
    statements_per_login: perLogin(sum((n) => !control(n))),
    transactions_per_login: perLogin(sum((n) => n === 'begin' || n === 'start transaction')),
    round_trips_per_login: perLogin(roundTrips),
    writes_per_login: perLogin(writes),
    statements,
  };
  if (profiles) {
    measured.profile = profiles.map((p) =>
      profileBreakdown(p, sliceLogins / replicas.length, run.windows_us),
    );
    measured.floor_call_profile = profiles.map((p) =>
      profileBreakdown(p, floorCalls / replicas.length, floor.windows_us),
    );
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
      `; the load generator's ${m.load_cpu_ms_per_login} ms per login (${m.floor_load_cpu_ms_per_call} per floor call)` +
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
    // The floor's crypto is timed with this passkey on every configuration.
    const cryptoUser = sqliteUsers[0]!;
    if (ONLY.has('sqlite')) {
      const onSqlite = await measure('sqlite', [single], sqliteUsers, cryptoUser, work);
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
      const onOne = await measure('postgresql', [a], pgUsers, cryptoUser, work, postgres.dataDir);
      results.push(onOne);
      printTable(onOne);
    }
    if (!ONLY.has('postgresql-2')) {
      return partialSummary(results);
    }
    const b = await set.start('b');
    stops.push(() => b.stop());
    const onTwo = await measure('postgresql', [a, b], pgUsers, cryptoUser, work, postgres.dataDir);
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
        '2 bare unary calls (grpc.health.v1 Check) per login on the same channels at 16 clients + assertion verify + SSH and X.509 signatures (shared by the replicas), in slices alternating with the logins',
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
