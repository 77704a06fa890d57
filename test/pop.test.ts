// Calls authenticated by proof of possession instead of mTLS, through a real keyport-auth on a lab clock:
// the channel carries no client certificate; each call carries the session certificate (keyport-cert-bin)
// and a proof signed by its key over this call (keyport-pop), built here with proto/pop.ts and sent as raw
// bytes, so a test controls exactly what is signed and what is sent (and once through the client core). Every refusal is checked for its code,
// its words, and a database unchanged (the nonces too, for a proof that fails a check).
import {
  X509Certificate,
  KeyObject,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  webcrypto,
} from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../auth/ca/x509-library';
import { connectCluster } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { generateSessionKey } from '../client/keystore/session-key';
import type { SessionSigner } from '../client/keystore/signer';
import type { SessionKeyAlgorithm } from '../client/keystore/session-key';
import { fromServiceError, KeyportError } from '../proto/errors';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { UserServiceService } from '../proto/gen/keyport/v1/user';
import {
  base64url,
  digestOf,
  encodeProof,
  POP_CERTIFICATE_METADATA_KEY,
  POP_METADATA_KEY,
  POP_WINDOW_MS,
  PopRefused,
} from '../proto/pop';
import type { PopClaims, PopRefusal } from '../proto/pop';
import { createLabClock } from '../lab/clock';
import {
  connectAsAdmin,
  nextTotpCode,
  openClusterDb,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';

const GET_STATUS = UserServiceService.getStatus;
const PING = UserServiceService.ping;
const EMPTY = Buffer.alloc(0);
/** A GetStatusRequest with an unknown field (1: varint 1): it decodes as the empty request, its bytes differ. */
const GET_STATUS_WITH_UNKNOWN_FIELD = Buffer.from([0x08, 0x01]);

const clock = createLabClock();
let cluster: LabCluster;
let work: string;
let caPem: string;
/** A channel with no client certificate: TLS against the cluster CA only, as a card-backed session has. */
let channel: Client;

interface Session {
  user: string;
  certPem: string;
  certDer: Buffer;
  privateKeyPem: string;
  sign(data: Buffer): Promise<Buffer>;
}

let alice: Session;
let edna: Session;
let bob: Session;
let shortLived: Session;
let locked: Session;

/** A software signer (ECDSA P-256 over SHA-256 in DER, or Ed25519), as proto/pop.ts takes it. */
function signerOf(privateKeyPem: string): (data: Buffer) => Promise<Buffer> {
  const key = createPrivateKey(privateKeyPem);
  return async (data) => sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key);
}

/** A user signed up, then logged in (password + OTP) with a fresh session key of `algorithm`. */
async function session(
  user: string,
  algorithm: SessionKeyAlgorithm,
  ttlSeconds = 4 * 3600,
): Promise<Session> {
  const person = await signUpUserInProcess(cluster, join(work, user), user, ['access']);
  const api = connectCluster({ address: parseClusterAddress(cluster.address), caPem, caPin: cluster.caPin });
  try {
    const challenge = await api.auth.createAuthenticateChallenge({
      user,
      password: person.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const key = generateSessionKey(algorithm);
    const issued = await api.auth.login({
      mfaResponse: {
        challengeId: challenge.challengeId,
        response: { $case: 'totp', value: { code: nextTotpCode(person.totpSecret) } },
      },
      sshPublicKey: key.sshPublicKey,
      tlsPublicKey: key.publicKeyPem,
      ttlSeconds,
    });
    return {
      user,
      certPem: issued.tlsCertificate,
      certDer: new X509Certificate(issued.tlsCertificate).raw,
      privateKeyPem: key.privateKeyPem,
      sign: signerOf(key.privateKeyPem),
    };
  } finally {
    api.close();
  }
}

type Method = typeof GET_STATUS | typeof PING;

/** A proof by `session`'s key (or `signer`) for `method` over `bytes`, now on the lab clock. */
function proofFor(
  of: Session,
  method: Method,
  bytes: Buffer,
  overrides: Partial<PopClaims> = {},
  signer: (data: Buffer) => Promise<Buffer> = of.sign,
): Promise<string> {
  return encodeProof(
    {
      m: method.path,
      h: digestOf(bytes),
      t: clock.now(),
      n: base64url(randomBytes(16)),
      c: digestOf(of.certDer),
      ...overrides,
    },
    signer,
  );
}

function metadataOf(certificate: Buffer | undefined, proof: string | undefined): Metadata {
  const metadata = new Metadata();
  if (certificate) metadata.set(POP_CERTIFICATE_METADATA_KEY, certificate);
  if (proof !== undefined) metadata.set(POP_METADATA_KEY, proof);
  return metadata;
}

/** One unary call with exactly these request bytes and metadata; failures as the client core sees them. */
function rawCall<Res>(
  method: { path: string; responseDeserialize: (bytes: Buffer) => Res },
  bytes: Buffer,
  metadata: Metadata,
  over: Client = channel,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    over.makeUnaryRequest(
      method.path,
      (request: Buffer) => request,
      method.responseDeserialize,
      bytes,
      metadata,
      { deadline: Date.now() + 15_000 },
      (error: ServiceError | null, response?: Res) =>
        error ? reject(fromServiceError(error)) : resolve(response as Res),
    );
  });
}

/** Every table but pop_nonces, row by row. Spent or expired challenges, which the service's periodic
 * prune may drop at any moment, are left out. */
function storedState(): Record<string, unknown[]> {
  const db = openClusterDb(cluster);
  try {
    const tables = (
      db.prepare(`select name from sqlite_master where type = 'table' order by name`).all() as {
        name: string;
      }[]
    )
      .map((t) => t.name)
      .filter((name) => name !== 'pop_nonces');
    return Object.fromEntries(
      tables.map((name) => [
        name,
        db
          .prepare(
            name === 'challenges'
              ? 'select * from challenges where used = 0 and expires_ms >= ? order by id'
              : `select * from "${name}" order by rowid`,
          )
          .all(...(name === 'challenges' ? [clock.now()] : [])),
      ]),
    );
  } finally {
    db.close();
  }
}

function nonces(): { nonce: string; expires_ms: number }[] {
  const db = openClusterDb(cluster);
  try {
    return db.prepare('select nonce, expires_ms from pop_nonces order by nonce').all() as {
      nonce: string;
      expires_ms: number;
    }[];
  } finally {
    db.close();
  }
}

/**
 * Sends a call that must be refused: its code and words, and a database unchanged. A proof that fails a
 * check writes no nonce either (`noncesToo`), as does a replay (its nonce is the first call's).
 */
async function expectRefused(
  send: () => Promise<unknown>,
  expected: { code: string; reason?: PopRefusal; message?: RegExp },
): Promise<KeyportError> {
  const before = storedState();
  const noncesBefore = nonces();
  const error = await send().then(
    () => new Error('the call was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  const refused = error as KeyportError;
  expect(refused.code).toBe(expected.code);
  if (expected.reason) expect(refused.message).toBe(new PopRefused(expected.reason).message);
  if (expected.message) expect(refused.message).toMatch(expected.message);
  expect(storedState()).toEqual(before);
  expect(nonces()).toEqual(noncesBefore);
  return refused;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-pop-'));
  cluster = await startLabCluster({ clusterName: 'pop', env: clock.env });
  caPem = (
    JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as { caCertPem: string }
  ).caCertPem;
  channel = new Client(cluster.address, credentials.createSsl(Buffer.from(caPem)));
  // Every login before the clock moves: the OTP codes are the wall clock's.
  alice = await session('alice', 'ecdsa-p256');
  edna = await session('edna', 'ed25519');
  bob = await session('bob', 'ecdsa-p256');
  shortLived = await session('sid', 'ecdsa-p256', 300);
  locked = await session('lola', 'ecdsa-p256');
});

afterAll(async () => {
  channel?.close();
  await cluster?.stop();
  clock.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('a call authenticated by certificate and proof, with no client certificate on the channel', () => {
  it.each([
    ['ECDSA P-256', () => alice],
    ['Ed25519', () => edna],
  ])(
    'succeeds with a %s session key, and spends its nonce until two windows past its time',
    async (_, of) => {
      const me = of();
      const before = storedState();
      const proof = await proofFor(me, GET_STATUS, EMPTY);
      const status = await rawCall(GET_STATUS, EMPTY, metadataOf(me.certDer, proof));
      expect(status).toMatchObject({ user: me.user, roles: ['access'], clusterName: 'pop' });
      const claims = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()) as PopClaims;
      expect(nonces()).toContainEqual({ nonce: claims.n, expires_ms: claims.t + 2 * POP_WINDOW_MS });
      expect(storedState()).toEqual(before);
      // Another method, another proof.
      const ping = await rawCall(PING, EMPTY, metadataOf(me.certDer, await proofFor(me, PING, EMPTY)));
      expect(Math.abs(ping.serverTimeMs - clock.now())).toBeLessThan(60_000);
    },
  );

  it('is what the client core sends for a session whose key cannot leave its signer (client/api.ts)', async () => {
    // A signer shaped like a card's: sign() only, the key not exportable, so no TLS client certificate.
    const signer: SessionSigner = {
      source: 'piv',
      algorithm: 'ecdsa-p256',
      publicKeyPem: createPublicKey(createPrivateKey(alice.privateKeyPem))
        .export({ format: 'pem', type: 'spki' })
        .toString(),
      sshPublicKey: '',
      exportable: false,
      sign: signerOf(alice.privateKeyPem),
    };
    const api = connectCluster({
      address: parseClusterAddress(cluster.address),
      caPem,
      caPin: cluster.caPin,
      signer,
      certificatePem: alice.certPem,
    });
    try {
      const before = nonces().length;
      expect((await api.user.getStatus({})).user).toBe('alice');
      expect((await api.user.listMfaDevices({})).devices.map((d) => d.name)).toEqual(['otp']);
      await api.user.ping({});
      expect(nonces()).toHaveLength(before + 3);
    } finally {
      api.close();
    }
  });

  it('signs the request bytes as received: a request with an unknown field needs a proof over those bytes', async () => {
    const proof = await proofFor(alice, GET_STATUS, GET_STATUS_WITH_UNKNOWN_FIELD);
    const status = await rawCall(GET_STATUS, GET_STATUS_WITH_UNKNOWN_FIELD, metadataOf(alice.certDer, proof));
    expect(status.user).toBe('alice');
  });

  it('is refused when the same proof comes again (replayed), and the replay stores nothing', async () => {
    const proof = await proofFor(alice, GET_STATUS, EMPTY);
    await rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof));
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof)), {
      code: 'UNAUTHENTICATED',
      reason: 'replayed',
    });
    // Also on another connection, as a replay from elsewhere would come.
    const elsewhere = new Client(cluster.address, credentials.createSsl(Buffer.from(caPem)));
    try {
      await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof), elsewhere), {
        code: 'UNAUTHENTICATED',
        reason: 'replayed',
      });
    } finally {
      elsewhere.close();
    }
  });

  it('refuses a proof made for another method', async () => {
    const proof = await proofFor(alice, PING, EMPTY);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof)), {
      code: 'UNAUTHENTICATED',
      reason: 'method',
    });
  });

  it('refuses a proof made for another request', async () => {
    const overEmpty = await proofFor(alice, GET_STATUS, EMPTY);
    await expectRefused(
      () => rawCall(GET_STATUS, GET_STATUS_WITH_UNKNOWN_FIELD, metadataOf(alice.certDer, overEmpty)),
      { code: 'UNAUTHENTICATED', reason: 'request' },
    );
    const overOther = await proofFor(alice, GET_STATUS, GET_STATUS_WITH_UNKNOWN_FIELD);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, overOther)), {
      code: 'UNAUTHENTICATED',
      reason: 'request',
    });
  });

  it("refuses a proof made for another certificate: alice's proof beside bob's certificate", async () => {
    const proof = await proofFor(alice, GET_STATUS, EMPTY);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(bob.certDer, proof)), {
      code: 'UNAUTHENTICATED',
      reason: 'certificate',
    });
  });

  it("refuses a software key presenting another key's certificate (signature)", async () => {
    for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) {
      const software = generateSessionKey(algorithm);
      // Everything right but the key: alice's certificate, its digest in the proof, another key's signature.
      const proof = await proofFor(alice, GET_STATUS, EMPTY, {}, signerOf(software.privateKeyPem));
      await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof)), {
        code: 'UNAUTHENTICATED',
        reason: 'signature',
      });
    }
    // Bob's key, with his own certificate's digest claimed for alice's: still not alice's key.
    const bobs = await proofFor(alice, GET_STATUS, EMPTY, {}, bob.sign);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, bobs)), {
      code: 'UNAUTHENTICATED',
      reason: 'signature',
    });
  });

  it('refuses a certificate without a proof (missing): a certificate alone never authenticates', async () => {
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, undefined)), {
      code: 'UNAUTHENTICATED',
      reason: 'missing',
    });
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, '')), {
      code: 'UNAUTHENTICATED',
      reason: 'missing',
    });
  });

  it('refuses a malformed proof, a proof without a certificate, and oversize or repeated values', async () => {
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, 'v1.e30.AAAAAAAAAAA')), {
      code: 'UNAUTHENTICATED',
      reason: 'malformed',
    });
    const proof = await proofFor(alice, GET_STATUS, EMPTY);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(undefined, proof)), {
      code: 'UNAUTHENTICATED',
      message: /needs a signed-in client/,
    });
    await expectRefused(
      () => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, `${proof}${'A'.repeat(1024)}`)),
      {
        code: 'UNAUTHENTICATED',
        reason: 'malformed',
      },
    );
    const twoProofs = metadataOf(alice.certDer, proof);
    twoProofs.add(POP_METADATA_KEY, await proofFor(alice, GET_STATUS, EMPTY));
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, twoProofs), {
      code: 'UNAUTHENTICATED',
      reason: 'malformed',
    });
    const huge = Buffer.concat([alice.certDer, Buffer.alloc(9000)]);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(huge, proof)), {
      code: 'UNAUTHENTICATED',
      message: /at most 8192 bytes/,
    });
    const twoCertificates = metadataOf(alice.certDer, proof);
    twoCertificates.add(POP_CERTIFICATE_METADATA_KEY, bob.certDer);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, twoCertificates), {
      code: 'UNAUTHENTICATED',
      message: /must be one DER certificate/,
    });
  });

  it('refuses a certificate this cluster did not issue, even with a good proof by its key', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=alice',
      notBefore: new Date(clock.now() - 60_000),
      notAfter: new Date(clock.now() + 3600_000),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const der = Buffer.from(foreign.rawData);
    const privateKey = KeyObject.from(keys.privateKey);
    const proof = await proofFor({ ...alice, certDer: der }, GET_STATUS, EMPTY, {}, async (data) =>
      sign('sha256', data, privateKey),
    );
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(der, proof)), {
      code: 'UNAUTHENTICATED',
      message: /not issued by this cluster/,
    });
  });

  it("applies the user's state as for mTLS: a locked user's good proof is refused with LOCKED", async () => {
    const admin = await connectAsAdmin(cluster);
    try {
      await admin.admin.lockUser({ name: locked.user, reason: 'lost laptop', durationSeconds: 0 });
    } finally {
      admin.close();
    }
    const proof = await proofFor(locked, GET_STATUS, EMPTY);
    const error = await rawCall(GET_STATUS, EMPTY, metadataOf(locked.certDer, proof)).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'LOCKED' });
  });

  it('leaves an mTLS call as it was: the TLS client certificate authenticates, metadata aside', async () => {
    const mtls = new Client(
      cluster.address,
      credentials.createSsl(Buffer.from(caPem), Buffer.from(bob.privateKeyPem), Buffer.from(bob.certPem)),
    );
    try {
      const status = await rawCall(GET_STATUS, EMPTY, new Metadata(), mtls);
      expect(status.user).toBe('bob');
      const withAlices = await rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, 'garbage'), mtls);
      expect(withAlices.user).toBe('bob');
    } finally {
      mtls.close();
    }
  });
});

describe('time, on the lab clock', () => {
  it('refuses a proof from more than a window ago or ahead, and one that waited past the window (stale)', async () => {
    for (const t of [clock.now() - POP_WINDOW_MS - 5_000, clock.now() + POP_WINDOW_MS + 5_000]) {
      const proof = await proofFor(alice, GET_STATUS, EMPTY, { t });
      await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, proof)), {
        code: 'UNAUTHENTICATED',
        reason: 'stale',
      });
    }
    const held = await proofFor(alice, GET_STATUS, EMPTY);
    clock.advance(POP_WINDOW_MS + 1_000);
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, held)), {
      code: 'UNAUTHENTICATED',
      reason: 'stale',
    });
    // A fresh proof on the moved clock passes.
    const fresh = await proofFor(alice, GET_STATUS, EMPTY);
    expect((await rawCall(GET_STATUS, EMPTY, metadataOf(alice.certDer, fresh))).user).toBe('alice');
  });

  it('refuses an expired certificate with CERTIFICATE_EXPIRED, as over mTLS, its proof good', async () => {
    const before = await proofFor(shortLived, GET_STATUS, EMPTY);
    expect((await rawCall(GET_STATUS, EMPTY, metadataOf(shortLived.certDer, before))).user).toBe('sid');
    clock.advance(300_000 + 1_000);
    const proof = await proofFor(shortLived, GET_STATUS, EMPTY);
    const refused = await expectRefused(
      () => rawCall(GET_STATUS, EMPTY, metadataOf(shortLived.certDer, proof)),
      {
        code: 'CERTIFICATE_EXPIRED',
      },
    );
    expect(refused.fields.resolvableByRelogin).toBe(true);
    // The same certificate over mTLS hears the same.
    const mtls = new Client(
      cluster.address,
      credentials.createSsl(
        Buffer.from(caPem),
        Buffer.from(shortLived.privateKeyPem),
        Buffer.from(shortLived.certPem),
      ),
    );
    try {
      await expect(rawCall(GET_STATUS, EMPTY, new Metadata(), mtls)).rejects.toMatchObject({
        code: 'CERTIFICATE_EXPIRED',
      });
    } finally {
      mtls.close();
    }
    // Without a proof it is a certificate alone: missing, whatever the certificate.
    await expectRefused(() => rawCall(GET_STATUS, EMPTY, metadataOf(shortLived.certDer, undefined)), {
      code: 'UNAUTHENTICATED',
      reason: 'missing',
    });
  });
});
