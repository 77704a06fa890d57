// The load generator of bench/replicas.bench.ts, a process of its own on loopback: `clients` concurrent
// clients, each on one TLS channel to a replica (round robin over the targets), loop for `durationMs`
// after two untimed warm-up rounds, then print one JSON line. Mode `login`: passwordless logins as
// `keyport login --auth passwordless` sends them (CreateAuthenticateChallenge with the passwordless scope,
// then Login with the assertion and the session's public keys), the assertion made here by a software
// authenticator from the passkey the lab soft key registered for the client's user (its private key
// read from the soft key's state file): a CTAP ceremony per login through a soft key would time the
// soft key, not the cluster. Mode `ping`: two bare unary calls (the gRPC health check) on the same channel, the floor.
// Bounded: at most `durationMs` plus the warm-up, and `maxOps` per client.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { generateSessionKey } from '../client/keystore/session-key';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';

export interface LoadUser {
  user: string;
  /** base64url credential ID and user handle, and the ES256 key's PKCS#8 PEM (the soft key's state). */
  credentialId: string;
  userHandle: string;
  privateKeyPem: string;
}

export interface LoadPlan {
  mode: 'login' | 'ping';
  targets: { address: string; caPem: string; caPin: string }[];
  origin: string;
  users: LoadUser[];
  clients: number;
  durationMs: number;
  maxOps: number;
  /** The first signature counter this run's assertions carry (above any earlier run's). */
  signCountBase: number;
}

export interface LoadResult {
  mode: LoadPlan['mode'];
  ops: number;
  errors: number;
  first_error?: string;
  elapsed_ms: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
}

// WebAuthn authenticator data flags: user present, user verified (the PIN, for a passkey).
const FLAGS_UP_UV = 0x01 | 0x04;

function authenticatorData(rpId: string, signCount: number): Buffer {
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(signCount >>> 0);
  return Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.of(FLAGS_UP_UV), counter]);
}

/** A passkey's assertion with user verification, as the WebAuthn JSON a browser or the client sends. */
export function makeAssertion(
  user: LoadUser,
  key: KeyObject,
  options: { challenge: string; rpId: string },
  origin: string,
  signCount: number,
) {
  const clientData = Buffer.from(
    JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin, crossOrigin: false }),
  );
  const authData = authenticatorData(options.rpId, signCount);
  const signature = sign(
    'sha256',
    Buffer.concat([authData, createHash('sha256').update(clientData).digest()]),
    key,
  );
  return {
    id: user.credentialId,
    rawId: user.credentialId,
    type: 'public-key' as const,
    clientExtensionResults: {},
    response: {
      clientDataJSON: clientData.toString('base64url'),
      authenticatorData: authData.toString('base64url'),
      signature: signature.toString('base64url'),
      userHandle: user.userHandle,
    },
  };
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

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
  const one = (c: (typeof clients)[number]) =>
    plan.mode === 'ping'
      ? ping(c.api)
      : passwordlessLogin(c.api, c.user, c.key, c.session, plan.origin, ++c.signCount);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  try {
    // Warm-up: channels connected, code paths compiled, on both sides.
    for (let round = 0; round < 2; round++) await Promise.all(clients.map(one));
    const start = performance.now();
    const deadline = start + plan.durationMs;
    await Promise.all(
      clients.map(async (c) => {
        for (let n = 0; n < plan.maxOps && performance.now() < deadline; n++) {
          const at = performance.now();
          try {
            await one(c);
            latencies.push(performance.now() - at);
          } catch (error) {
            errors++;
            firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      }),
    );
    const elapsed = performance.now() - start;
    latencies.sort((a, b) => a - b);
    return {
      mode: plan.mode,
      ops: latencies.length,
      errors,
      ...(firstError ? { first_error: firstError } : {}),
      elapsed_ms: Number(elapsed.toFixed(1)),
      per_second: Number(((latencies.length * 1000) / elapsed).toFixed(1)),
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
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
