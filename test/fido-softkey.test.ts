// The repo's CTAP2 client (Fido2Client over CtaphidDevice over SocketHidTransport) against the real
// software security key (startSoftKey). The two were written independently, so this checks each one
// against the other over the same 64-byte reports a USB key would carry.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fido2Client } from '../client/hardware/fido/client';
import { AUTH_DATA_FLAGS, COSE_ALG, Ctap2Error, option } from '../client/hardware/fido/ctap2';
import { CtaphidError } from '../client/hardware/fido/ctaphid';
import type { KeepaliveStatus } from '../client/hardware/fido/ctaphid';
import { CtaphidDevice } from '../client/hardware/fido/device';
import { SocketHidTransport } from '../client/hardware/fido/socket-transport';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const RP = { id: 'localhost', name: 'Keyport test' };
let dir: string;
let counter = 0;
const keys: SoftKey[] = [];
const devices: CtaphidDevice[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kfs-'));
});
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  for (const k of keys.splice(0)) await k.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(
  opts: { touch?: string; pin?: string } = {},
): Promise<{ key: SoftKey; client: Fido2Client }> {
  const name = `k${++counter}`;
  const key = await startSoftKey({
    socketPath: join(dir, `${name}.sock`),
    statePath: join(dir, `${name}.json`),
    touch: opts.touch ?? 'auto',
    pin: opts.pin,
  });
  keys.push(key);
  const device = await CtaphidDevice.open(await SocketHidTransport.connect(key.socketPath));
  devices.push(device);
  return { key, client: new Fido2Client(device) };
}

const hash = (): Uint8Array => new Uint8Array(createHash('sha256').update(randomBytes(16)).digest());
const user = (name: string) => ({ id: new Uint8Array(Buffer.from(name)), name, displayName: name });
const ES256 = [{ type: 'public-key' as const, alg: COSE_ALG.ES256 }];

describe('Fido2Client against the soft key', () => {
  it('reads getInfo', async () => {
    const { key, client } = await start();
    const info = await client.getInfo();
    expect(info.versions).toContain('FIDO_2_1');
    expect(Buffer.from(info.aaguid).toString('hex')).toBe(key.aaguid.replaceAll('-', ''));
    expect(info.pinUvAuthProtocols).toContain(2);
    expect(option(info, 'rk')).toBe(true);
    expect(option(info, 'clientPin')).toBe(false);
    expect(info.algorithms).toContainEqual({ type: 'public-key', alg: COSE_ALG.ES256 });
  });

  it('makes an ES256 resident credential with credProps, then asserts with GetNextAssertion', async () => {
    const { client } = await start({ pin: '1234' });
    const ids: Uint8Array[] = [];
    for (const name of ['alice', 'bob', 'carol']) {
      const token = await client.getPinToken('1234', ['mc'], RP.id);
      const made = await client.makeCredential({
        clientDataHash: hash(),
        rp: RP,
        user: user(name),
        pubKeyCredParams: ES256,
        options: { rk: true },
        pinUvAuthToken: token,
        credProps: true,
      });
      expect(made.fmt).toBe('packed');
      expect(made.clientExtensionResults).toEqual({ credProps: { rk: true } });
      const attested = made.authData.attestedCredentialData!;
      expect(attested.credentialPublicKey.alg).toBe(COSE_ALG.ES256);
      expect(made.authData.flags & AUTH_DATA_FLAGS.UV).toBeTruthy();
      ids.push(attested.credentialId);
    }
    const token = await client.getPinToken('1234', ['ga'], RP.id);
    const assertions = await client.getAssertion({
      rpId: RP.id,
      clientDataHash: hash(),
      pinUvAuthToken: token,
    });
    expect(assertions).toHaveLength(3);
    expect(assertions[0]!.numberOfCredentials).toBe(3);
    const seen = assertions.map((a) => Buffer.from(a.credential!.id).toString('hex')).sort();
    expect(seen).toEqual(ids.map((id) => Buffer.from(id).toString('hex')).sort());
    // After UV, the key names the users.
    expect(assertions.map((a) => a.user?.name).sort()).toEqual(['alice', 'bob', 'carol']);
    for (const a of assertions) expect(a.authData.flags & AUTH_DATA_FLAGS.UV).toBeTruthy();
  });

  it('sets a PIN on a key without one, then gets a token with permissions', async () => {
    const { client } = await start();
    expect(option(await client.getInfo(), 'clientPin')).toBe(false);
    await client.setPin('4321');
    expect(option(await client.getInfo(), 'clientPin')).toBe(true);
    expect(await client.getPinRetries()).toBe(8);
    const token = await client.getPinToken('4321', ['mc', 'ga'], RP.id);
    expect(token).toHaveLength(32);
    const made = await client.makeCredential({
      clientDataHash: hash(),
      rp: RP,
      user: user('dave'),
      pubKeyCredParams: ES256,
      pinUvAuthToken: token,
    });
    expect(made.authData.flags & AUTH_DATA_FLAGS.UV).toBeTruthy();
  });

  it('reports a wrong PIN with the retries left', async () => {
    const { client } = await start({ pin: '1234' });
    const error = await client.getPinToken('9999', ['ga'], RP.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Ctap2Error);
    expect((error as Ctap2Error).code).toBe('PIN_INVALID');
    expect((error as Ctap2Error).retries).toBe(7);
    expect((error as Ctap2Error).message).toMatch(/7 attempts left/);
    expect(await client.getPinRetries()).toBe(7);
    // The right PIN still works and restores the counter.
    await client.getPinToken('1234', ['ga'], RP.id);
    expect(await client.getPinRetries()).toBe(8);
  });

  it('surfaces KEEPALIVE user-presence-needed and waits for a manual touch', async () => {
    const { key, client } = await start({ touch: 'manual' });
    const statuses: KeepaliveStatus[] = [];
    key.events.once('up-needed', () => setTimeout(() => key.touch('approve'), 250));
    const made = await client.makeCredential(
      { clientDataHash: hash(), rp: RP, user: user('erin'), pubKeyCredParams: ES256 },
      { onKeepalive: (s) => statuses.push(s) },
    );
    expect(made.authData.flags & AUTH_DATA_FLAGS.UP).toBeTruthy();
    expect(statuses).toContain('user-presence-needed');
  });

  it('a denied touch is OPERATION_DENIED', async () => {
    const { key, client } = await start({ touch: 'manual' });
    key.events.once('up-needed', () => key.touch('deny'));
    const error = await client
      .makeCredential({ clientDataHash: hash(), rp: RP, user: user('fay'), pubKeyCredParams: ES256 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Ctap2Error);
    expect((error as Ctap2Error).code).toBe('OPERATION_DENIED');
  });

  it('cancels through an AbortSignal: the key sees CANCEL and the client throws CANCELLED', async () => {
    const { key, client } = await start({ touch: 'manual' });
    const controller = new AbortController();
    const keyCancelled = new Promise<void>((resolve) => key.events.once('cancelled', () => resolve()));
    const pending = client
      .makeCredential(
        { clientDataHash: hash(), rp: RP, user: user('gus'), pubKeyCredParams: ES256 },
        {
          signal: controller.signal,
          onKeepalive: (s) => {
            if (s === 'user-presence-needed') controller.abort();
          },
        },
      )
      .catch((e: unknown) => e);
    const error = await pending;
    await keyCancelled;
    expect(error).toBeInstanceOf(CtaphidError);
    expect((error as CtaphidError).code).toBe('CANCELLED');
    // The channel is clean afterwards.
    key.events.once('up-needed', () => key.touch('approve'));
    const made = await client.makeCredential({
      clientDataHash: hash(),
      rp: RP,
      user: user('gus'),
      pubKeyCredParams: ES256,
    });
    expect(made.fmt).toBe('packed');
  });
});
