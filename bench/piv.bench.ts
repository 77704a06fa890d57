// A PIV signature on the lab's virtual card through a real pcscd (lab/piv), and what it costs a call's
// proof of possession. One card per process (libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so
// the card starts before pcsclite is loaded).
// 1. PivSession.sign for a PIN-never, touch-never P-256 key (slot 9e) against its floor in the same run:
//    the same GENERAL AUTHENTICATE, encoded once beforehand, sent over the session's own connection with
//    the transmit the session uses (nothing but the round trip through pcscd, vpcd and the card); a bare
//    GET VERSION round trip for context. Rounds alternate the two. APDUs per signature are the card's own
//    count: above 1 for PIN policy never fails the run; PIN once (VERIFY the first time) and always (VERIFY
//    + sign) are reported.
// 2. user.ping on a real keyport-auth, sequential: a session whose key is on the card (generated there,
//    logged in with its attestation under the lab root, which the cap trusts), its calls carrying a proof
//    signed by the card, against the same ping over mTLS with a software key (the floor) and over PoP with
//    a software key. Modes alternate over rounds, so a noisy neighbour hits all alike.
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { encodeCommandApdu } from '../client/hardware/piv/apdu';
import { getVersionCommand, signCommand } from '../client/hardware/piv/commands';
import type { PivSlot } from '../client/hardware/piv/commands';
import type { CardConnection } from '../client/hardware/piv/reader';
import type { PivSession } from '../client/hardware/piv/session';
import { openPivSession } from '../client/hardware/piv/session';
import { openPivSigner } from '../client/hardware/piv/signer';
import { generateSessionKey } from '../client/keystore/session-key';
import type { SessionSigner } from '../client/keystore/signer';
import { connectAsAdmin, hardwareKeyClusterYaml, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import type { HardwareKeyAttestation } from '../proto/gen/keyport/v1/auth';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { median, percentile, timeEach } from './stats';

const ROUNDS = Number(process.env.BENCH_PIV_ROUNDS ?? 6);
const SIGNATURES = Number(process.env.BENCH_PIV_SIGNATURES ?? 100);
const CALLS = Number(process.env.BENCH_PIV_CALLS ?? 200);
const TARGET_RATIO = 1.2;
const PIN = '123456';
const PASSWORD = 'piv-bench-password-123';
const NEVER: PivSlot = 0x9e;
const ONCE: PivSlot = 0x9a;
const ALWAYS: PivSlot = 0x9c;

const ms = (value: number) => Number(value.toFixed(3));
const ratio = (measured: number, floor: number) => Number((measured / floor).toFixed(2));

/** The session's own card connection: the floor goes over the very transmit `send` uses. */
function connectionOf(session: PivSession): CardConnection {
  const connection = (session as unknown as { connection?: CardConnection }).connection;
  if (!connection) throw new Error('the PIV session has no card connection');
  return connection;
}

/** One raw APDU round trip, its status word checked (9000). */
async function transmitOk(connection: CardConnection, bytes: Uint8Array): Promise<void> {
  const response = await connection.transmit(bytes);
  const n = response.length;
  if (n < 2 || response[n - 2] !== 0x90 || response[n - 1] !== 0x00)
    throw new Error(`the card answered ${Buffer.from(response.subarray(-2)).toString('hex')}`);
}

/** APDUs the card itself counted per run of `work`, over `count` runs. */
async function apdusPer(card: LabPivCard, count: number, work: () => Promise<unknown>) {
  await card.stats({ reset: true });
  for (let i = 0; i < count; i++) await work();
  const stats = await card.stats({ reset: true });
  return { perRun: stats.apdus / count, byIns: stats.byIns };
}

export async function benchPiv() {
  const started = performance.now();
  const card = await startLabPivCard({ touch: 'auto' });
  let session: PivSession | undefined;
  try {
    session = await openPivSession({ socketPath: card.socketPath });
    const signature = await benchSignature(card, session);
    const pop = await benchPopWithCard(card, session);
    return {
      signature,
      pop,
      within_target: signature.within_target && signature.apdus_per_signature.pin_never === 1,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
  } finally {
    await session?.close();
    await card.stop();
  }
}

async function benchSignature(card: LabPivCard, session: PivSession) {
  await session.generate(NEVER, { pin: 'never', touch: 'never' });
  await session.generate(ONCE, { pin: 'once', touch: 'never' });
  await session.generate(ALWAYS, { pin: 'always', touch: 'never' });
  const digest = createHash('sha256').update('keyport-pop-v1.claims').digest();
  const signBytes = encodeCommandApdu(signCommand(NEVER, digest));
  const versionBytes = encodeCommandApdu(getVersionCommand());
  const connection = connectionOf(session);

  // APDUs per signature, as the card counts them. PIN once: the first signature of the connection
  // VERIFYs, the next ones do not (measured before any VERIFY in this session).
  const never = await apdusPer(card, 20, () => session.sign(NEVER, digest));
  const onceFirst = await apdusPer(card, 1, () => session.sign(ONCE, digest, { pin: PIN }));
  const onceNext = await apdusPer(card, 20, () => session.sign(ONCE, digest, { pin: PIN }));
  const always = await apdusPer(card, 20, () => session.sign(ALWAYS, digest, { pin: PIN }));
  const raw = await apdusPer(card, 20, () => transmitOk(connection, signBytes));

  // Warm both paths, then alternate them round by round.
  for (let i = 0; i < 20; i++) {
    await session.sign(NEVER, digest);
    await transmitOk(connection, signBytes);
    await transmitOk(connection, versionBytes);
  }
  const measured: number[] = [];
  const floor: number[] = [];
  const version: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? (['floor', 'client'] as const) : (['client', 'floor'] as const);
    for (const which of order) {
      if (which === 'client')
        measured.push(...(await timeEach(SIGNATURES, () => session.sign(NEVER, digest))));
      else floor.push(...(await timeEach(SIGNATURES, () => transmitOk(connection, signBytes))));
    }
    version.push(...(await timeEach(SIGNATURES, () => transmitOk(connection, versionBytes))));
  }
  if (connectionOf(session) !== connection) throw new Error('the session reconnected during the bench');

  const r = median(measured) / median(floor);
  const line = {
    bench: 'piv signature (PivSession.sign, PIN never)',
    ratio: Number(r.toFixed(2)),
    measured_median_ms: ms(median(measured)),
    measured_p90_ms: ms(percentile(measured, 90)),
    measured_p99_ms: ms(percentile(measured, 99)),
    floor: 'the raw GENERAL AUTHENTICATE over the same connection',
    floor_median_ms: ms(median(floor)),
    floor_p90_ms: ms(percentile(floor, 90)),
    floor_p99_ms: ms(percentile(floor, 99)),
    get_version_median_ms: ms(median(version)),
    get_version_p90_ms: ms(percentile(version, 90)),
    samples: measured.length,
    target_ratio: TARGET_RATIO,
    within_target: r <= TARGET_RATIO,
    apdus_per_signature: {
      pin_never: never.perRun,
      pin_once_first: onceFirst.perRun,
      pin_once_after: onceNext.perRun,
      pin_always: always.perRun,
      raw_floor: raw.perRun,
    },
    by_ins_pin_never: never.byIns,
  };
  console.log(
    `${line.bench}: ratio = ${line.ratio} (measured ${line.measured_median_ms} ms median, ${line.measured_p90_ms} ms p90; ` +
      `floor "${line.floor}" ${line.floor_median_ms} ms median, ${line.floor_p90_ms} ms p90)`,
  );
  console.log(
    `piv GET VERSION round trip (context): ${line.get_version_median_ms} ms median, ${line.get_version_p90_ms} ms p90`,
  );
  console.log(
    `piv APDUs per signature (the card's count): PIN never ${never.perRun}, once ${onceFirst.perRun} then ${onceNext.perRun}, ` +
      `always ${always.perRun}; the raw floor ${raw.perRun}`,
  );
  console.log(JSON.stringify(line));
  return line;
}

/** A cluster that trusts the lab card's attestation root, with no second factor (not what is measured). */
async function clusterTrusting(card: LabPivCard): Promise<LabCluster> {
  return startLabCluster({
    clusterName: 'bench-piv',
    configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
  });
}

interface Summary {
  p50_ms: number;
  p99_ms: number;
  calls_per_second: number;
}

function summarize(samples: number[]): Summary {
  const total = samples.reduce((sum, s) => sum + s, 0);
  return {
    p50_ms: ms(median(samples)),
    p99_ms: ms(percentile(samples, 99)),
    calls_per_second: Math.round((samples.length * 1000) / total),
  };
}

async function benchPopWithCard(card: LabPivCard, session: PivSession) {
  const cluster = await clusterTrusting(card);
  const apis: ClusterApi[] = [];
  try {
    const { caCertPem: caPem } = JSON.parse(
      await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8'),
    ) as { caCertPem: string };
    const address = parseClusterAddress(cluster.address);
    const admin = await connectAsAdmin(cluster);
    let token: string;
    try {
      token = (await admin.admin.createUser({ name: 'pivbench', roles: ['access'], traits: {} })).signupToken;
    } finally {
      admin.close();
    }
    const anonymous = connectCluster({ address, caPem, caPin: cluster.caPin });
    apis.push(anonymous);
    await anonymous.auth.completeSignup({ token, password: PASSWORD });
    const login = async (key: { tls: string; ssh: string }, attestation?: HardwareKeyAttestation) => {
      const challenge = await anonymous.auth.createAuthenticateChallenge({
        user: 'pivbench',
        password: PASSWORD,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      });
      return anonymous.auth.login({
        mfaResponse: { challengeId: challenge.challengeId, response: undefined },
        sshPublicKey: key.ssh,
        tlsPublicKey: key.tls,
        ttlSeconds: 3600,
        hardwareKeyAttestation: attestation,
      });
    };

    // The software key: mTLS (the floor) and PoP.
    const soft = generateSessionKey('ecdsa-p256');
    const softSession = await login({ tls: soft.publicKeyPem, ssh: soft.sshPublicKey });
    const privateKey = createPrivateKey(soft.privateKeyPem);
    const softSigner: SessionSigner = {
      source: 'file',
      algorithm: 'ecdsa-p256',
      publicKeyPem: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
      sshPublicKey: soft.sshPublicKey,
      exportable: true,
      sign: async (data) => sign('sha256', data, privateKey),
    };

    // The card's key (slot 9e: PIN never, touch never), logged in with its attestation.
    const cardKey = (await session.metadata(NEVER)).publicKey;
    if (!cardKey) throw new Error('slot 9e has no public key');
    const cardSigner = openPivSigner({
      session,
      slot: NEVER,
      publicKey: cardKey,
      policy: { pin: 'never', touch: 'never' },
      prompts: {
        pin: async () => {
          throw new Error('a PIN-never key asked for the PIN');
        },
        touch: () => {
          throw new Error('a touch-never key asked for a touch');
        },
      },
    });
    const attestation: HardwareKeyAttestation = {
      slotCertificate: (await session.attest(NEVER)).raw,
      attestationCertificate: (await session.readAttestationCertificate()).raw,
      intermediates: [],
    };
    const cardSession = await login(
      { tls: cardSigner.publicKeyPem, ssh: cardSigner.sshPublicKey },
      attestation,
    );
    if (cardSession.privateKeyPolicy !== 'hardware_key')
      throw new Error(`the card's session meets "${cardSession.privateKeyPolicy}", not hardware_key`);

    const modes = {
      mtls: connectCluster({
        address,
        caPem,
        caPin: cluster.caPin,
        clientKeyPem: soft.privateKeyPem,
        clientCertPem: softSession.tlsCertificate,
      }),
      software_pop: connectCluster({
        address,
        caPem,
        caPin: cluster.caPin,
        signer: softSigner,
        certificatePem: softSession.tlsCertificate,
        proofOfPossession: true,
      }),
      card_pop: connectCluster({
        address,
        caPem,
        caPin: cluster.caPin,
        signer: cardSigner,
        certificatePem: cardSession.tlsCertificate,
      }),
    };
    apis.push(...Object.values(modes));
    for (const api of Object.values(modes)) for (let i = 0; i < 50; i++) await api.user.ping({});

    // Card APDUs per call with a proof: one signature each, nothing else.
    const cardCalls = await apdusPer(card, 20, () => modes.card_pop.user.ping({}));

    const samples = { mtls: [] as number[], software_pop: [] as number[], card_pop: [] as number[] };
    const names = Object.keys(modes) as (keyof typeof modes)[];
    const perRound = Math.max(1, Math.round(CALLS / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const mode of order)
        samples[mode].push(...(await timeEach(perRound, () => modes[mode].user.ping({}))));
    }
    // The card's signature as the proof maker calls it (SHA-256 of the proof's input, then the card), alone.
    const proofInput = Buffer.alloc(200, 1);
    const cardSign = await timeEach(100, () => cardSigner.sign(proofInput));
    const seq = {
      mtls: summarize(samples.mtls),
      software_pop: summarize(samples.software_pop),
      card_pop: summarize(samples.card_pop),
    };
    const line = {
      bench: 'piv pop (user.ping, proof signed by the card)',
      ratio: ratio(seq.card_pop.p50_ms, seq.mtls.p50_ms),
      measured_median_ms: seq.card_pop.p50_ms,
      floor: 'the same ping over mTLS, software key',
      floor_median_ms: seq.mtls.p50_ms,
      samples: samples.card_pop.length,
      storage: 'sqlite',
      sequential: seq,
      ratio_p50: {
        card_pop_vs_mtls: ratio(seq.card_pop.p50_ms, seq.mtls.p50_ms),
        software_pop_vs_mtls: ratio(seq.software_pop.p50_ms, seq.mtls.p50_ms),
        card_pop_vs_software_pop: ratio(seq.card_pop.p50_ms, seq.software_pop.p50_ms),
      },
      ratio_p99: {
        card_pop_vs_mtls: ratio(seq.card_pop.p99_ms, seq.mtls.p99_ms),
        software_pop_vs_mtls: ratio(seq.software_pop.p99_ms, seq.mtls.p99_ms),
      },
      added_p50_ms: {
        software_pop: ms(seq.software_pop.p50_ms - seq.mtls.p50_ms),
        card_pop: ms(seq.card_pop.p50_ms - seq.mtls.p50_ms),
      },
      card_apdus_per_call: cardCalls.perRun,
      card_signer_sign_p50_ms: ms(median(cardSign)),
    };
    console.log(
      `${line.bench}: ratio = ${line.ratio} (measured ${seq.card_pop.p50_ms} ms p50, ${seq.card_pop.p99_ms} ms p99; ` +
        `floor "${line.floor}" ${seq.mtls.p50_ms} ms p50, ${seq.mtls.p99_ms} ms p99)`,
    );
    console.log(
      `piv pop, software key (context): ratio = ${line.ratio_p50.software_pop_vs_mtls} (${seq.software_pop.p50_ms} ms p50, ` +
        `${seq.software_pop.p99_ms} ms p99); the card over the software PoP ${line.ratio_p50.card_pop_vs_software_pop}; ` +
        `${cardCalls.perRun} card APDU per call; the card signer's sign alone ${line.card_signer_sign_p50_ms} ms p50`,
    );
    console.log(JSON.stringify(line));
    return line;
  } finally {
    for (const api of apis) api.close();
    await cluster.stop();
  }
}
