// How long a change made through one keyport-auth replica takes to be enforced by another (issue 15: at
// most 1 s, a lock at once). Run by bench/replicas.bench.ts on its two PostgreSQL replicas, after the
// load: ROUNDS times, a role the signed-in user holds is edited through replica A (its `role list` rule
// taken away or given back, alternately), and replica B is asked as fast as it answers, on the user's
// certificate, until it enforces the new rule; the same for an admin's lock of the user (B's ping refused
// with LOCKED) and its unlock (B's ping served again). Each sample is the time from A's reply to B's first
// enforcing answer, on the bench's clock; `polls` says how many of B's answers that took (1: B's very
// first answer after A's reply enforced the change). For scale, the median of one bare call to B, and of
// B's role listing right after a call to A that changes nothing.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { generateSessionKey } from '../client/keystore/session-key';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { connectAsAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { makeAssertion } from './passkey-assertion';
import type { LoadUser } from './passkey-assertion';
import { median, percentile } from './stats';

const ROUNDS = Number(process.env.BENCH_PROPAGATION_ROUNDS ?? 20);
const TARGET_MS = 1000;
/** A change B has not enforced after this long counts as a miss (and fails the bench). */
const GIVE_UP_MS = 10_000;
const ROLE = 'bench-propagation';

export interface PropagationOptions {
  /** The replica the changes are made through, and the one that must enforce them. */
  a: LabCluster;
  b: LabCluster;
  /** A passkey user of the cluster (the bench's soft key registered it); signed in passwordless. */
  user: LoadUser;
  origin: string;
  /** A signature counter above any this passkey has sent. */
  signCount: number;
}

interface Samples {
  p50_ms: number;
  max_ms: number;
  /** The most answers of B one change took to be enforced (1: the first one already was). */
  polls_max: number;
  /** Changes B had not enforced after GIVE_UP_MS. */
  missed: number;
}

export interface PropagationResult {
  bench: string;
  rounds: number;
  target_ms: number;
  b_call_p50_ms: number;
  /** B's role listing right after a read-only call to A: what the role change's samples compare to. */
  control_b_after_a_read_p50_ms: number;
  role_change: Samples;
  user_lock: Samples;
  user_unlock: Samples;
  within_target: boolean;
}

interface Sample {
  ms: number;
  polls: number;
  enforced: boolean;
}

/** Asks B until `enforced(answer)`, from the moment A replied; `ask` resolves to B's answer, refusals too. */
async function untilEnforced(ask: () => Promise<string>, wanted: string): Promise<Sample> {
  const start = performance.now();
  for (let polls = 1; ; polls++) {
    const answer = await ask();
    const ms = performance.now() - start;
    if (answer === wanted) return { ms, polls, enforced: true };
    if (ms > GIVE_UP_MS) return { ms, polls, enforced: false };
  }
}

/** B's answer as a word: `ok`, or the refusal's KeyportError code. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (error) {
    return String((error as { code?: string }).code ?? error);
  }
}

function summary(samples: Sample[]): Samples {
  const ms = samples.map((s) => s.ms);
  return {
    p50_ms: Number(median(ms).toFixed(2)),
    max_ms: Number(percentile(ms, 100).toFixed(2)),
    polls_max: Math.max(...samples.map((s) => s.polls)),
    missed: samples.filter((s) => !s.enforced).length,
  };
}

const within = (s: Samples) => s.missed === 0 && s.max_ms <= TARGET_MS;

const roleJson = (grants: boolean) =>
  JSON.stringify({
    kind: 'role',
    version: 'v7',
    metadata: { name: ROLE, description: 'bench/replicas-propagation.ts' },
    spec: {
      allow: {
        logins: ['bench-propagation'],
        ...(grants ? { rules: [{ resources: ['role'], verbs: ['list'] }] } : {}),
      },
    },
  });

/** A passwordless login through `replica`, as the load generator makes it; returns the client certificate. */
async function signInPasswordless(
  replica: LabCluster,
  caPem: string,
  options: PropagationOptions,
): Promise<{ keyPem: string; certPem: string }> {
  const api = connectCluster({ address: parseClusterAddress(replica.address), caPem, caPin: replica.caPin });
  try {
    const challenge = await api.auth.createAuthenticateChallenge({
      user: '',
      password: '',
      scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
      device: undefined,
    });
    const request = JSON.parse(challenge.webauthnRequestOptionsJson) as { challenge: string; rpId: string };
    const assertion = makeAssertion(
      options.user,
      createPrivateKey(options.user.privateKeyPem),
      request,
      options.origin,
      options.signCount,
    );
    const session = generateSessionKey('ecdsa-p256');
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
    if (!issued.roles.includes(ROLE)) throw new Error(`signed in with roles ${issued.roles.join(', ')}`);
    return { keyPem: session.privateKeyPem, certPem: issued.tlsCertificate };
  } finally {
    api.close();
  }
}

export async function benchPropagation(options: PropagationOptions): Promise<PropagationResult> {
  const { a, b } = options;
  const name = options.user.user;
  const caPem = (
    JSON.parse(await readFile(join(a.dataDir, 'admin-identity.json'), 'utf8')) as { caCertPem: string }
  ).caCertPem;
  const adminA = await connectAsAdmin(a);
  let onB: ClusterApi | undefined;
  // The user's spec as it was, put back at the end.
  const userDoc = JSON.parse((await adminA.admin.getResource({ kind: 'user', name })).json) as {
    spec: { roles: string[]; traits?: Record<string, string[]> };
  };
  const userJson = (roles: string[]) =>
    JSON.stringify({ kind: 'user', version: 'v2', metadata: { name }, spec: { ...userDoc.spec, roles } });
  try {
    await adminA.admin.createResources({ documentsJson: [roleJson(true)], force: true });
    await adminA.admin.createResources({
      documentsJson: [userJson([...userDoc.spec.roles, ROLE])],
      force: true,
    });
    const session = await signInPasswordless(b, caPem, options);
    onB = connectCluster({
      address: parseClusterAddress(b.address),
      caPem,
      caPin: b.caPin,
      clientKeyPem: session.keyPem,
      clientCertPem: session.certPem,
    });
    const api = onB;
    const listRoles = () => outcome(() => api.admin.listResources({ kind: 'role' }));
    const ping = () => outcome(() => api.user.ping({}));
    // Warm: the channel to B connected, both code paths run once.
    if ((await listRoles()) !== 'ok' || (await ping()) !== 'ok') throw new Error('B refused the bench user');
    const bCall: number[] = [];
    for (let i = 0; i < 50; i++) {
      const start = performance.now();
      await ping();
      bCall.push(performance.now() - start);
    }

    const role: Sample[] = [];
    const control: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // The control: B's same call right after a call to A that changes nothing.
      await adminA.admin.getResource({ kind: 'role', name: ROLE });
      const start = performance.now();
      await listRoles();
      control.push(performance.now() - start);
      // Taken away on even rounds, given back on odd ones.
      const grants = i % 2 === 1;
      await adminA.admin.createResources({ documentsJson: [roleJson(grants)], force: true });
      role.push(await untilEnforced(listRoles, grants ? 'ok' : 'ACCESS_DENIED'));
    }
    const lock: Sample[] = [];
    const unlock: Sample[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await adminA.admin.lockUser({ name, durationSeconds: 0, reason: 'bench/replicas-propagation.ts' });
      lock.push(await untilEnforced(ping, 'LOCKED'));
      await adminA.admin.unlockUser({ name });
      unlock.push(await untilEnforced(ping, 'ok'));
    }

    const result: PropagationResult = {
      bench:
        'a change through replica A enforced by replica B (PostgreSQL): ms from A reply to B first enforcing answer',
      rounds: ROUNDS,
      target_ms: TARGET_MS,
      b_call_p50_ms: Number(median(bCall).toFixed(2)),
      control_b_after_a_read_p50_ms: Number(median(control).toFixed(2)),
      role_change: summary(role),
      user_lock: summary(lock),
      user_unlock: summary(unlock),
      within_target: false,
    };
    result.within_target =
      within(result.role_change) && within(result.user_lock) && within(result.user_unlock);
    const show = (what: string, s: Samples) =>
      `${what} p50 ${s.p50_ms} ms, max ${s.max_ms} ms (at most ${s.polls_max} answer(s) of B${s.missed ? `, ${s.missed} missed` : ''})`;
    console.log(
      `propagation A -> B, ${ROUNDS} rounds, target ${TARGET_MS} ms: ${show('role change', result.role_change)}; ` +
        `${show('user lock', result.user_lock)}; ${show('unlock', result.user_unlock)}; one call to B p50 ${result.b_call_p50_ms} ms, ` +
        `B's role listing right after a read-only call to A p50 ${result.control_b_after_a_read_p50_ms} ms`,
    );
    console.log(JSON.stringify(result));
    return result;
  } finally {
    onB?.close();
    // Put the user and the cluster back as the bench found them.
    await adminA.admin.unlockUser({ name }).catch(() => {});
    await adminA.admin.createResources({ documentsJson: [userJson(userDoc.spec.roles)], force: true });
    await adminA.admin.deleteResource({ kind: 'role', name: ROLE }).catch(() => {});
    adminA.close();
  }
}
