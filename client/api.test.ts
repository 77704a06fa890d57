// The client half of the per-call proof of possession (proto/pop.ts), against a tiny grpc-js server in this
// file that records what each call carried: its raw request bytes, its metadata, and whether the TLS
// handshake had a client certificate.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPublicKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { experimental, Server } from '@grpc/grpc-js';
import type { Metadata, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServiceService, GetResourceRequest } from '../proto/gen/keyport/v1/admin';
import { AuthServiceService, ClusterInfo } from '../proto/gen/keyport/v1/auth';
import { UserServiceService } from '../proto/gen/keyport/v1/user';
import {
  checkProof,
  decodeProof,
  digestOf,
  POP_CERTIFICATE_METADATA_KEY,
  POP_METADATA_KEY,
  POP_WINDOW_MS,
  PopRefused,
} from '../proto/pop';
import { pinOf } from './cluster-trust';
import { connectCluster, connectSession } from './api';
import type { ClusterApi } from './api';
import { createSoftwareSigner, FileStore } from './keystore';
import type { SessionKeyAlgorithm, SessionSigner } from './keystore';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface Issuer {
  certPem: string;
  name: x509.Name;
  signingKey: webcrypto.CryptoKey;
}

async function signingKeyOf(privateKey: KeyObject): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey(
    'pkcs8',
    privateKey.export({ format: 'der', type: 'pkcs8' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
}

async function makeCa(): Promise<Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signingKey = await signingKeyOf(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: 'CN=pop test CA',
    issuer: 'CN=pop test CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: spki,
    signingKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  return { certPem: certificate.toString('pem'), name: certificate.subjectName, signingKey };
}

/** A certificate for `publicKey` (any algorithm), signed by the CA: a server's, or a session's. */
async function issue(ca: Issuer, publicKey: KeyObject, subject: string, server: boolean): Promise<string> {
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject,
    issuer: ca.name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }),
    signingKey: ca.signingKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.ExtendedKeyUsageExtension([
        server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(server ? [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])] : []),
    ],
  });
  return certificate.toString('pem');
}

interface SeenCall {
  path: string;
  /** The request bytes as received, before any decoding. */
  bytes: Buffer;
  metadata: Metadata;
  /** Whether the TLS handshake carried a client certificate. */
  clientCertificate: boolean;
}

let ca: Issuer;
let server: Server;
let port: number;
let scratch: string;
const seen: SeenCall[] = [];

type Definition = Record<string, { path: string; responseSerialize: (value: never) => Buffer }>;

/** One method of `definition`, taking raw bytes (recorded) and answering `response`. */
function recorded(definition: Definition, method: string, response: unknown) {
  const { path } = definition[method] as { path: string };
  const service = { [method]: { ...definition[method], requestDeserialize: (bytes: Buffer) => bytes } };
  const implementation: UntypedServiceImplementation = {
    [method]: (call: ServerUnaryCall<Buffer, unknown>, callback: sendUnaryData<unknown>) => {
      seen.push({
        path,
        bytes: call.request,
        metadata: call.metadata,
        clientCertificate: call.getAuthContext().sslPeerCertificate !== undefined,
      });
      callback(null, response);
    },
  };
  server.addService(service as never, implementation);
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'keyport-api-pop-'));
  ca = await makeCa();
  const host = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const hostCertPem = await issue(ca, host.publicKey, 'CN=127.0.0.1', true);
  server = new Server();
  recorded(AdminServiceService, 'getResource', { kind: 'role', name: 'editor', json: '{}' });
  recorded(UserServiceService, 'ping', { serverTimeMs: 1 });
  recorded(AuthServiceService, 'getClusterInfo', ClusterInfo.fromPartial({ clusterName: 'pop' }));
  // Asks for a client certificate and does not require one, as keyport-auth does (auth/server.ts).
  const keyPem = Buffer.from(host.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const provider: experimental.CertificateProvider = {
    addCaCertificateListener: (listener) =>
      setImmediate(() => listener({ caCertificate: Buffer.from(ca.certPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (listener) =>
      setImmediate(() => listener({ certificate: Buffer.from(hostCertPem), privateKey: keyPem })),
    removeIdentityCertificateListener: () => {},
  };
  const credentials = experimental.createCertificateProviderServerCredentials(provider, provider, false);
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await rm(scratch, { recursive: true, force: true });
});

interface Session {
  signer: SessionSigner;
  certificatePem: string;
}

let sessions = 0;
async function newSession(algorithm: SessionKeyAlgorithm): Promise<Session> {
  sessions += 1;
  const signer = await createSoftwareSigner(new FileStore(join(scratch, 'keys')), `s${sessions}`, algorithm);
  const certificatePem = await issue(ca, createPublicKey(signer.publicKeyPem), `CN=user${sessions}`, false);
  return { signer, certificatePem };
}

function target() {
  return {
    address: { host: '127.0.0.1', port },
    caPem: ca.certPem,
    caPin: pinOf(new X509Certificate(ca.certPem)),
  };
}

/** The calls the server saw while `run` ran. */
async function callsDuring(run: () => Promise<unknown>): Promise<SeenCall[]> {
  const before = seen.length;
  await run();
  return seen.slice(before);
}

function expectValidProof(call: SeenCall, session: Session, nowMs = Date.now()) {
  const certificateDer = call.metadata.get(POP_CERTIFICATE_METADATA_KEY)[0] as Buffer;
  expect(Buffer.isBuffer(certificateDer)).toBe(true);
  const certificate = new X509Certificate(certificateDer);
  expect(certificate.raw.equals(new X509Certificate(session.certificatePem).raw)).toBe(true);
  const proof = decodeProof(call.metadata.get(POP_METADATA_KEY)[0] as string);
  checkProof(
    proof,
    {
      method: call.path,
      requestDigest: digestOf(call.bytes),
      certificateDigest: digestOf(certificateDer),
      nowMs,
    },
    certificate.publicKey,
  );
  return proof.claims;
}

describe('connectCluster with proofOfPossession', () => {
  let api: ClusterApi | undefined;
  afterAll(() => api?.close());

  for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) {
    it(`signs every call (${algorithm}): method, request bytes, time, nonce, certificate; no client certificate`, async () => {
      const session = await newSession(algorithm);
      const started = Date.now();
      const connection = connectCluster({ ...target(), ...session, proofOfPossession: true });
      try {
        const request = { kind: 'role', name: `editor-${algorithm}` };
        const calls = await callsDuring(async () => {
          expect(await connection.admin.getResource(request)).toEqual({
            kind: 'role',
            name: 'editor',
            json: '{}',
          });
          await connection.user.ping({});
          await connection.admin.getResource(request);
        });
        expect(calls.map((call) => call.path)).toEqual([
          '/keyport.v1.AdminService/GetResource',
          '/keyport.v1.UserService/Ping',
          '/keyport.v1.AdminService/GetResource',
        ]);
        const claims = calls.map((call) => expectValidProof(call, session));
        for (const call of calls) expect(call.clientCertificate).toBe(false);
        // The digest is of the bytes the server received, which are the request's protobuf encoding.
        expect(GetResourceRequest.decode((calls[0] as SeenCall).bytes)).toEqual(request);
        expect(claims[0]?.h).toBe(digestOf(GetResourceRequest.encode(request).finish()));
        expect(claims[1]?.h).toBe(digestOf(Buffer.alloc(0)));
        // A fresh nonce per call, even for the same request; the client's time.
        expect(new Set(claims.map((claim) => claim.n)).size).toBe(3);
        for (const claim of claims) {
          expect(claim.n).toMatch(/^[A-Za-z0-9_-]{22}$/);
          expect(claim.t).toBeGreaterThanOrEqual(started);
          expect(claim.t).toBeLessThanOrEqual(Date.now());
        }
      } finally {
        connection.close();
      }
    });
  }

  it('makes a proof that fails for another method, another request or out of its window', async () => {
    const session = await newSession('ecdsa-p256');
    api = connectCluster({ ...target(), ...session, proofOfPossession: true });
    const [call] = await callsDuring(() => api!.admin.getResource({ kind: 'role', name: 'a' }));
    const seenCall = call as SeenCall;
    const certificateDer = seenCall.metadata.get(POP_CERTIFICATE_METADATA_KEY)[0] as Buffer;
    const proof = decodeProof(seenCall.metadata.get(POP_METADATA_KEY)[0] as string);
    const expected = {
      method: seenCall.path,
      requestDigest: digestOf(seenCall.bytes),
      certificateDigest: digestOf(certificateDer),
      nowMs: Date.now(),
    };
    const key = new X509Certificate(certificateDer).publicKey;
    const refusal = (changes: Partial<typeof expected>) => {
      try {
        checkProof(proof, { ...expected, ...changes }, key);
      } catch (error) {
        return error instanceof PopRefused ? error.reason : error;
      }
      return 'accepted';
    };
    expect(refusal({})).toBe('accepted');
    expect(refusal({ method: '/keyport.v1.AdminService/DeleteResource' })).toBe('method');
    expect(
      refusal({ requestDigest: digestOf(GetResourceRequest.encode({ kind: 'role', name: 'b' }).finish()) }),
    ).toBe('request');
    expect(refusal({ nowMs: Date.now() + POP_WINDOW_MS + 5_000 })).toBe('stale');
    const otherSession = await newSession('ecdsa-p256');
    expect(
      refusal({ certificateDigest: digestOf(new X509Certificate(otherSession.certificatePem).raw) }),
    ).toBe('certificate');
  });

  it('is implied for a key that cannot leave its signer, and never signs AuthService calls', async () => {
    const session = await newSession('ecdsa-p256');
    // A card's signer, as client/hardware/piv gives one: same interface, not exportable; it counts signatures
    // (each may cost the person a touch or a PIN).
    let signatures = 0;
    const card: SessionSigner = {
      ...session.signer,
      source: 'piv',
      exportable: false,
      sign: (data) => {
        signatures++;
        return session.signer.sign(data);
      },
    };
    const connection = connectCluster({ ...target(), signer: card, certificatePem: session.certificatePem });
    try {
      // Cluster info authenticates nobody: sent as it is, no certificate, no proof, no signature.
      const unsigned = await callsDuring(() => connection.auth.getClusterInfo({}));
      expect(unsigned).toHaveLength(1);
      expect(unsigned[0]?.clientCertificate).toBe(false);
      expect(unsigned[0]?.metadata.get(POP_METADATA_KEY)).toEqual([]);
      expect(signatures).toBe(0);
      const calls = await callsDuring(() => connection.admin.getResource({ kind: 'role', name: 'a' }));
      expect(calls).toHaveLength(1);
      expect(calls[0]?.clientCertificate).toBe(false);
      expectValidProof(calls[0] as SeenCall, session);
      expect(signatures).toBe(1);
    } finally {
      connection.close();
    }
  });

  it('refuses a certificate that is not for the signer’s key, before any call', async () => {
    const [session, other] = await Promise.all([newSession('ecdsa-p256'), newSession('ecdsa-p256')]);
    expect(() =>
      connectCluster({
        ...target(),
        signer: session.signer,
        certificatePem: other.certificatePem,
        proofOfPossession: true,
      }),
    ).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
  });
});

describe('a session over mTLS (the default for a software key)', () => {
  it('sends its certificate in the TLS handshake and no proof', async () => {
    const session = await newSession('ecdsa-p256');
    const connection = await connectSession({ ...target(), ...session });
    try {
      const calls = await callsDuring(() => connection.user.ping({}));
      expect(calls).toHaveLength(1);
      expect(calls[0]?.clientCertificate).toBe(true);
      expect(calls[0]?.metadata.get(POP_METADATA_KEY)).toEqual([]);
      expect(calls[0]?.metadata.get(POP_CERTIFICATE_METADATA_KEY)).toEqual([]);
    } finally {
      connection.close();
    }
  });

  it('is not made by connectCluster, which cannot read the key first', async () => {
    const session = await newSession('ecdsa-p256');
    expect(() => connectCluster({ ...target(), ...session })).toThrow(/connectSession/);
  });
});
