// What the soft key produces must verify with a third-party relying party library
// (@simplewebauthn/server), with its packed attestation chaining to the lab attestation root.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encode } from 'cbor2';
import {
  SettingsService,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type {
  AuthenticationResponseJSON,
  RegistrationResponseJSON,
  WebAuthnCredential,
} from '@simplewebauthn/server';
import { createAuthorities } from './attestation-ca';
import { getPinToken, plain, RawCtaphid, setPin, tokenParam } from './raw-client.test-support';
import { startSoftKey } from './soft-key';
import type { SoftKey } from './soft-key';

const ORIGIN = 'https://localhost';
const RP_ID = 'localhost';
const OK = 0x00;
const CREDENTIAL_EXCLUDED = 0x19;
const PIN_INVALID = 0x31;
const PIN_AUTH_BLOCKED = 0x34;
const PUAT_REQUIRED = 0x36;
const PERMISSION_MC = 0x01;
const PERMISSION_GA = 0x02;

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

let dir: string;
const running: SoftKey[] = [];
const clients: RawCtaphid[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ksk-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const k of running.splice(0)) await k.stop();
  SettingsService.setRootCertificates({ identifier: 'packed', certificates: [] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(name: string, pin?: string): Promise<{ key: SoftKey; client: RawCtaphid; cid: number }> {
  const key = await startSoftKey({
    socketPath: join(dir, `${name}.sock`),
    statePath: join(dir, `${name}.json`),
    touch: 'auto',
    pin,
  });
  running.push(key);
  const client = await RawCtaphid.connect(key.socketPath);
  clients.push(client);
  return { key, client, cid: await client.init() };
}

function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: Uint8Array) {
  const json = Buffer.from(
    JSON.stringify({ type, challenge: b64url(challenge), origin: ORIGIN, crossOrigin: false }),
  );
  return { json, hash: createHash('sha256').update(json).digest() };
}

interface Registration {
  status: number;
  json?: RegistrationResponseJSON;
  challenge: string;
  credentialId?: Uint8Array;
}

async function register(
  client: RawCtaphid,
  cid: number,
  opts: { rk?: boolean; token?: Buffer; userId?: string; exclude?: Uint8Array[] } = {},
): Promise<Registration> {
  const challenge = randomBytes(32);
  const cd = clientData('webauthn.create', challenge);
  const params = new Map<number, unknown>([
    [1, cd.hash],
    [
      2,
      new Map([
        ['id', RP_ID],
        ['name', 'Keyport test'],
      ]),
    ],
    [
      3,
      new Map<string, unknown>([
        ['id', Buffer.from(opts.userId ?? 'user-1')],
        ['name', `${opts.userId ?? 'user-1'}@example.com`],
        ['displayName', opts.userId ?? 'User One'],
      ]),
    ],
    [
      4,
      [
        new Map<string, unknown>([
          ['alg', -7],
          ['type', 'public-key'],
        ]),
      ],
    ],
  ]);
  if (opts.exclude)
    params.set(
      5,
      opts.exclude.map(
        (id) =>
          new Map<string, unknown>([
            ['id', id],
            ['type', 'public-key'],
          ]),
      ),
    );
  if (opts.rk) params.set(7, new Map([['rk', true]]));
  if (opts.token) {
    params.set(8, tokenParam(opts.token, cd.hash));
    params.set(9, 2);
  }
  const r = await client.cbor(cid, 0x01, params);
  if (r.status !== OK || !r.body) return { status: r.status, challenge: b64url(challenge) };
  const authData = r.body.get(2) as Uint8Array;
  const idLength = (authData[53]! << 8) | authData[54]!;
  const credentialId = authData.subarray(55, 55 + idLength);
  const attestationObject = encode(
    plain(
      new Map<string, unknown>([
        ['fmt', r.body.get(1)],
        ['attStmt', r.body.get(3)],
        ['authData', authData],
      ]),
    ),
  );
  return {
    status: OK,
    challenge: b64url(challenge),
    credentialId,
    json: {
      id: b64url(credentialId),
      rawId: b64url(credentialId),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(cd.json),
        attestationObject: b64url(attestationObject),
        transports: ['usb'],
      },
      clientExtensionResults: { credProps: { rk: opts.rk ?? false } },
      authenticatorAttachment: 'cross-platform',
    },
  };
}

function assertionJson(body: Map<unknown, unknown>, cdJson: Buffer): AuthenticationResponseJSON {
  const credential = body.get(1) as Map<string, Uint8Array>;
  const user = body.get(4) as Map<string, unknown> | undefined;
  const id = b64url(credential.get('id')!);
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: {
      clientDataJSON: b64url(cdJson),
      authenticatorData: b64url(body.get(2) as Uint8Array),
      signature: b64url(body.get(3) as Uint8Array),
      ...(user ? { userHandle: b64url(user.get('id') as Uint8Array) } : {}),
    },
    clientExtensionResults: {},
  };
}

async function authenticate(
  client: RawCtaphid,
  cid: number,
  opts: { allow?: Uint8Array[]; token?: Buffer },
): Promise<{ status: number; body?: Map<unknown, unknown>; cdJson: Buffer; challenge: string }> {
  const challenge = randomBytes(32);
  const cd = clientData('webauthn.get', challenge);
  const params = new Map<number, unknown>([
    [1, RP_ID],
    [2, cd.hash],
  ]);
  if (opts.allow)
    params.set(
      3,
      opts.allow.map(
        (id) =>
          new Map<string, unknown>([
            ['id', id],
            ['type', 'public-key'],
          ]),
      ),
    );
  if (opts.token) {
    params.set(6, tokenParam(opts.token, cd.hash));
    params.set(7, 2);
  }
  const r = await client.cbor(cid, 0x02, params);
  return { status: r.status, body: r.body, cdJson: cd.json, challenge: b64url(challenge) };
}

describe('registration and authentication verified by @simplewebauthn/server', () => {
  it('registers with packed attestation chaining to the lab root, then authenticates with a rising counter', async () => {
    const { key, client, cid } = await start('mfa');
    SettingsService.setRootCertificates({ identifier: 'packed', certificates: [key.attestationRootPem] });

    const reg = await register(client, cid);
    expect(reg.status).toBe(OK);
    const verified = await verifyRegistrationResponse({
      response: reg.json!,
      expectedChallenge: reg.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      requireUserVerification: false,
    });
    expect(verified.verified).toBe(true);
    expect(verified.registrationInfo?.fmt).toBe('packed');
    expect(verified.registrationInfo?.aaguid).toBe(key.aaguid);
    expect(verified.registrationInfo?.userVerified).toBe(false);
    const credential: WebAuthnCredential = { ...verified.registrationInfo!.credential };

    for (let i = 0; i < 2; i++) {
      const a = await authenticate(client, cid, { allow: [randomBytes(32), reg.credentialId!] });
      expect(a.status).toBe(OK);
      const result = await verifyAuthenticationResponse({
        response: assertionJson(a.body!, a.cdJson),
        expectedChallenge: a.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential,
        requireUserVerification: false,
      });
      expect(result.verified).toBe(true);
      expect(result.authenticationInfo.newCounter).toBeGreaterThan(credential.counter);
      credential.counter = result.authenticationInfo.newCounter;
    }
    const state = JSON.parse(readFileSync(key.statePath, 'utf8')) as { signCount: number };
    expect(state.signCount).toBe(credential.counter);
  });

  it("fails attestation verification against a root that is not the lab key's", async () => {
    const { client, cid } = await start('other-root');
    const stranger = await createAuthorities();
    SettingsService.setRootCertificates({ identifier: 'packed', certificates: [stranger.root.certPem] });
    const reg = await register(client, cid);
    await expect(
      verifyRegistrationResponse({
        response: reg.json!,
        expectedChallenge: reg.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        requireUserVerification: false,
      }),
    ).rejects.toThrow(/\(Packed\|Full\)/);
  });

  it('answers CREDENTIAL_EXCLUDED when excludeList names a credential it holds', async () => {
    const { client, cid } = await start('exclude');
    const reg = await register(client, cid);
    expect((await register(client, cid, { exclude: [randomBytes(16)] })).status).toBe(OK);
    expect((await register(client, cid, { exclude: [randomBytes(16), reg.credentialId!] })).status).toBe(
      CREDENTIAL_EXCLUDED,
    );
  });
});

describe('PIN protocol 2 and user verification', () => {
  it('sets a PIN, verifies UV registrations of resident keys and walks them with getNextAssertion', async () => {
    const { key, client, cid } = await start('pin');
    SettingsService.setRootCertificates({ identifier: 'packed', certificates: [key.attestationRootPem] });
    expect(await setPin(client, cid, '4321')).toBe(OK);
    const info = await client.cbor(cid, 0x04);
    expect((info.body?.get(4) as Map<string, boolean>).get('clientPin')).toBe(true);

    // A discoverable credential on a key with a PIN needs the PIN.
    expect((await register(client, cid, { rk: true })).status).toBe(PUAT_REQUIRED);

    const credentials = new Map<string, WebAuthnCredential>();
    for (const user of ['alice', 'bob']) {
      const { token } = await getPinToken(client, cid, '4321', PERMISSION_MC, RP_ID);
      const reg = await register(client, cid, { rk: true, token: token!, userId: user });
      expect(reg.status).toBe(OK);
      const v = await verifyRegistrationResponse({
        response: reg.json!,
        expectedChallenge: reg.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        requireUserVerification: true,
      });
      expect(v.verified && v.registrationInfo.userVerified).toBe(true);
      credentials.set(v.registrationInfo!.credential.id, { ...v.registrationInfo!.credential });
    }

    const { token } = await getPinToken(client, cid, '4321', PERMISSION_GA, RP_ID);
    const first = await authenticate(client, cid, { token: token! });
    expect(first.status).toBe(OK);
    expect(first.body?.get(5)).toBe(2); // numberOfCredentials
    const next = await client.cbor(cid, 0x08);
    expect(next.status).toBe(OK);
    const seen = new Set<string>();
    for (const body of [first.body!, next.body!]) {
      const json = assertionJson(body, first.cdJson);
      const credential = credentials.get(json.id)!;
      const result = await verifyAuthenticationResponse({
        response: json,
        expectedChallenge: first.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential,
        requireUserVerification: true,
      });
      expect(result.verified && result.authenticationInfo.userVerified).toBe(true);
      expect(result.authenticationInfo.newCounter).toBeGreaterThan(credential.counter);
      const user = body.get(4) as Map<string, unknown>;
      seen.add(Buffer.from(user.get('id') as Uint8Array).toString());
      expect(typeof user.get('name')).toBe('string'); // UV was done, so the name may be shown
    }
    expect(seen).toEqual(new Set(['alice', 'bob']));
    expect((await client.cbor(cid, 0x08)).status).toBe(0x30); // NOT_ALLOWED: none left
  });

  it('counts wrong PINs down, persists the count, and asks for a power cycle after three in a row', async () => {
    const { key, client, cid } = await start('wrong-pin', '123456');
    const retries = async (): Promise<number> =>
      (
        await client.cbor(
          cid,
          0x06,
          new Map([
            [1, 2],
            [2, 1],
          ]),
        )
      ).body?.get(3) as number;
    expect(await retries()).toBe(8);

    expect((await getPinToken(client, cid, '000000', PERMISSION_GA)).status).toBe(PIN_INVALID);
    expect(await retries()).toBe(7);
    const saved = JSON.parse(readFileSync(key.statePath, 'utf8')) as { pin: { retries: number } };
    expect(saved.pin.retries).toBe(7);

    expect((await getPinToken(client, cid, '000000', PERMISSION_GA)).status).toBe(PIN_INVALID);
    expect((await getPinToken(client, cid, '000000', PERMISSION_GA)).status).toBe(PIN_AUTH_BLOCKED);
    expect((await getPinToken(client, cid, '123456', PERMISSION_GA)).status).toBe(PIN_AUTH_BLOCKED);
    expect(await retries()).toBe(5);

    key.powerCycle();
    const ok = await getPinToken(client, cid, '123456', PERMISSION_GA);
    expect(ok.status).toBe(OK);
    expect(ok.token?.length).toBe(32);
    expect(await retries()).toBe(8);
  });
});
