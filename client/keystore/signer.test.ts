import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from './file-store';
import { generateSessionKey, sshPublicKeyFromPrivatePem } from './session-key';
import type { SessionKeyAlgorithm } from './session-key';
import { createSoftwareSigner, openSoftwareSigner, tlsClientKeyPem } from './signer';
import type { SessionSigner } from './signer';
import type { KeyStore } from './key-store';

let scratch: string;
let store: FileStore;

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'keyport-signer-'));
  store = new FileStore(join(scratch, 'keys'));
});

afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const algorithms: SessionKeyAlgorithm[] = ['ecdsa-p256', 'ed25519'];

/** Verifies as keyport-auth does (proto/pop.ts checkProof): SHA-256 + DER for ECDSA, none for Ed25519. */
function verifies(signer: SessionSigner, data: Buffer, signature: Buffer): boolean {
  const key = createPublicKey(signer.publicKeyPem);
  return verify(
    signer.algorithm === 'ed25519' ? null : 'sha256',
    data,
    { key, dsaEncoding: 'der' },
    signature,
  );
}

/** Every form the private key could leak in: PEM body lines, PKCS#8 DER (base64, hex), the JWK scalar. */
function keyMaterialOf(privateKeyPem: string): string[] {
  const key = createPrivateKey(privateKeyPem);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const jwk = key.export({ format: 'jwk' });
  return [
    'PRIVATE KEY',
    ...privateKeyPem.split('\n').filter((line) => line && !line.startsWith('-----')),
    der.toString('base64'),
    der.toString('hex'),
    jwk.d as string,
    Buffer.from(jwk.d as string, 'base64url').toString('hex'),
  ];
}

/** Everything a caller can see of a signer: its JSON, its deepest inspection, every own property. */
function everythingVisible(signer: SessionSigner): string {
  const properties = Reflect.ownKeys(signer).map((key) => {
    const value = (signer as unknown as Record<PropertyKey, unknown>)[key];
    return typeof value === 'function' ? value.toString() : inspect(value, { depth: Infinity });
  });
  return [
    JSON.stringify(signer),
    inspect(signer, { depth: Infinity, showHidden: true, getters: true }),
    ...properties,
  ].join('\n');
}

describe('software session signer', () => {
  for (const algorithm of algorithms) {
    it(`makes a ${algorithm} key, puts it in the store, and signs verifiably with it`, async () => {
      const signer = await createSoftwareSigner(store, 'alice@lab', algorithm);
      expect(signer).toMatchObject({ source: 'file', algorithm, exportable: true });
      const stored = await store.get('alice@lab');
      expect(createPublicKey(stored).export({ format: 'pem', type: 'spki' })).toBe(signer.publicKeyPem);
      expect(signer.sshPublicKey).toBe(sshPublicKeyFromPrivatePem(stored));

      const data = Buffer.from('keyport-pop-v1.payload');
      const signature = await signer.sign(data);
      expect(verifies(signer, data, signature)).toBe(true);
      expect(verifies(signer, Buffer.from('keyport-pop-v1.other'), signature)).toBe(false);
      if (algorithm === 'ecdsa-p256') {
        // DER SEQUENCE { r, s }: what a PIV card answers for a SHA-256 digest.
        expect(signature[0]).toBe(0x30);
        expect(signature[1]).toBe(signature.length - 2);
      } else {
        expect(signature).toHaveLength(64);
      }
    });

    it(`opens a stored ${algorithm} key by id and public key, and signs verifiably`, async () => {
      const key = generateSessionKey(algorithm);
      await store.put('bob@lab', key.privateKeyPem);
      const signer = openSoftwareSigner(store, 'bob@lab', key.publicKeyPem);
      expect(signer).toMatchObject({
        source: 'file',
        algorithm,
        exportable: true,
        publicKeyPem: key.publicKeyPem,
        sshPublicKey: key.sshPublicKey,
      });
      const data = Buffer.from('a request');
      expect(verifies(signer, data, await signer.sign(data))).toBe(true);
    });

    it(`never shows the ${algorithm} key: JSON, inspect and its properties hold no key material`, async () => {
      const created = await createSoftwareSigner(store, 'carol@lab', algorithm);
      const opened = openSoftwareSigner(store, 'carol@lab', created.publicKeyPem);
      // Loaded, so that the key is in memory for both.
      await Promise.all([created.sign(Buffer.of(1)), opened.sign(Buffer.of(1))]);
      const material = keyMaterialOf(await store.get('carol@lab'));
      for (const signer of [created, opened]) {
        const visible = everythingVisible(signer);
        for (const secret of material) expect(visible.includes(secret), secret.slice(0, 16)).toBe(false);
        expect(Object.isFrozen(signer)).toBe(true);
        expect(Object.keys(signer).sort()).toEqual(
          ['algorithm', 'exportable', 'publicKeyPem', 'sign', 'source', 'sshPublicKey'].sort(),
        );
      }
    });
  }

  it('reads the store once, at the first signature, not when opened', async () => {
    const key = generateSessionKey('ecdsa-p256');
    await store.put('dan@lab', key.privateKeyPem);
    const reads: string[] = [];
    const counting: KeyStore = {
      kind: 'keychain',
      ready: () => store.ready(),
      put: (id, pem) => store.put(id, pem),
      get: (id) => (reads.push(id), store.get(id)),
      delete: (id) => store.delete(id),
    };
    const signer = openSoftwareSigner(counting, 'dan@lab', key.publicKeyPem);
    expect(signer.source).toBe('keychain');
    expect(reads).toEqual([]);
    await Promise.all([signer.sign(Buffer.of(1)), signer.sign(Buffer.of(2))]);
    await signer.sign(Buffer.of(3));
    await tlsClientKeyPem(signer);
    expect(reads).toEqual(['dan@lab']);
  });

  it('gives KEY_NOT_FOUND for a missing key, as the store does, and tries the store again next time', async () => {
    const key = generateSessionKey('ecdsa-p256');
    const signer = openSoftwareSigner(store, 'erin@lab', key.publicKeyPem);
    await expect(signer.sign(Buffer.of(1))).rejects.toMatchObject({
      name: 'KeyStoreError',
      code: 'KEY_NOT_FOUND',
      message: expect.stringContaining('Log in again'),
    });
    await expect(tlsClientKeyPem(signer)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    // A failure is not remembered (a keychain unlocked since answers now).
    await store.put('erin@lab', key.privateKeyPem);
    const data = Buffer.of(1, 2, 3);
    expect(verifies(signer, data, await signer.sign(data))).toBe(true);
  });

  it("refuses a stored key that is not the certificate's key (KEY_NOT_FOUND), and a stored non-key", async () => {
    const certified = generateSessionKey('ecdsa-p256');
    await store.put('fay@lab', generateSessionKey('ecdsa-p256').privateKeyPem);
    const signer = openSoftwareSigner(store, 'fay@lab', certified.publicKeyPem);
    await expect(signer.sign(Buffer.of(1))).rejects.toMatchObject({
      code: 'KEY_NOT_FOUND',
      message: expect.stringContaining("for this session's certificate"),
    });

    await store.put('gus@lab', 'not a key');
    await expect(
      openSoftwareSigner(store, 'gus@lab', certified.publicKeyPem).sign(Buffer.of(1)),
    ).rejects.toMatchObject({ code: 'KEYSTORE_IO', message: expect.stringContaining('not a private key') });
  });

  it('refuses a public key of another kind', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() => openSoftwareSigner(store, 'hal@lab', rsa)).toThrow(/Ed25519 or ECDSA P-256/);
  });
});

describe('tlsClientKeyPem: the key for a TLS client handshake', () => {
  it("gives grpc-js the software signer's key", async () => {
    const signer = await createSoftwareSigner(store, 'ivy@lab', 'ecdsa-p256');
    const pem = await tlsClientKeyPem(signer);
    expect(createPublicKey(pem).export({ format: 'pem', type: 'spki' })).toBe(signer.publicKeyPem);
  });

  it('refuses a signer whose key cannot leave it, and a signer this module did not make', async () => {
    const software = await createSoftwareSigner(store, 'jo@lab', 'ed25519');
    const card: SessionSigner = { ...software, source: 'piv', exportable: false };
    await expect(tlsClientKeyPem(card)).rejects.toThrow(/piv session key cannot do a TLS client handshake/);
    const copy: SessionSigner = { ...software };
    await expect(tlsClientKeyPem(copy)).rejects.toThrow(/proofOfPossession/);
  });

  it('has one caller: client/api.ts, where the channel credentials are made', () => {
    const root = resolve(import.meta.dirname, '../..');
    const skip = new Set(['node_modules', 'dist', 'release', 'test-results', '.git', '.keyport-demo']);
    const sources = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name))
      .map((entry) => relative(root, join(entry.parentPath, entry.name)))
      .filter((path) => !path.split('/').some((part) => skip.has(part)));
    expect(sources.length).toBeGreaterThan(100);
    const users = sources.filter((path) =>
      readFileSync(join(root, path), 'utf8').includes('tlsClientKeyPem'),
    );
    expect(users.sort()).toEqual([
      'client/api.ts',
      'client/keystore/signer.test.ts',
      'client/keystore/signer.ts',
    ]);
  });
});
