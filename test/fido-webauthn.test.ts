// client/webauthn against real soft keys, with the JSON checked by a third-party relying party library
// (@simplewebauthn/server), as keyport-auth will check it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type { WebAuthnCredential } from '@simplewebauthn/server';
import { KeyportError } from '../proto/errors';
import { option } from '../client/hardware/fido/ctap2';
import {
  authenticate,
  clientDataJSON,
  closeKeys,
  openKeys,
  openLabKey,
  originFor,
  register,
  SECURITY_KEY_MESSAGES,
} from '../client/webauthn';
import type { SecurityKey, SecurityKeyPrompts } from '../client/webauthn';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const ORIGIN = 'https://localhost';
const RP_ID = 'localhost';
let dir: string;
let counter = 0;
const softKeys: SoftKey[] = [];
const opened: SecurityKey[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kfw-'));
});
afterEach(async () => {
  await closeKeys(opened.splice(0));
  for (const k of softKeys.splice(0)) await k.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function softKey(
  opts: { touch?: string; pin?: string } = {},
): Promise<{ soft: SoftKey; key: SecurityKey }> {
  const name = `w${++counter}`;
  const soft = await startSoftKey({
    socketPath: join(dir, `${name}.sock`),
    statePath: join(dir, `${name}.json`),
    touch: opts.touch ?? 'auto',
    pin: opts.pin,
  });
  softKeys.push(soft);
  const key = await openLabKey(soft.socketPath);
  opened.push(key);
  return { soft, key };
}

interface Recorded {
  taps: string[];
  pins: (number | undefined)[];
  notices: string[];
  newPins: number;
}

function prompts(pins: string[] = [], newPin = '5678'): SecurityKeyPrompts & { log: Recorded } {
  const log: Recorded = { taps: [], pins: [], notices: [], newPins: 0 };
  return {
    log,
    tap: (m) => log.taps.push(m),
    pin: async (retries) => {
      log.pins.push(retries);
      const next = pins.shift();
      if (next === undefined) throw new Error('unexpected PIN prompt');
      return next;
    },
    newPin: async () => {
      log.newPins++;
      return newPin;
    },
    notice: (m) => log.notices.push(m),
  };
}

async function registerWith(
  keys: SecurityKey[],
  opts: { passwordless?: boolean; pins?: string[]; userID?: string; exclude?: string[] } = {},
) {
  const options = await generateRegistrationOptions({
    rpName: 'Keyport test',
    rpID: RP_ID,
    userName: opts.userID ?? 'alice',
    userID: new Uint8Array(Buffer.from(opts.userID ?? 'user-alice')),
    attestationType: 'direct',
    excludeCredentials: (opts.exclude ?? []).map((id) => ({ id })),
    authenticatorSelection: opts.passwordless
      ? { residentKey: 'required', userVerification: 'required' }
      : { residentKey: 'discouraged', userVerification: 'discouraged' },
    extensions: { credProps: true },
  });
  const p = prompts(opts.pins);
  const response = await register(JSON.stringify(options), { origin: ORIGIN, keys, prompts: p });
  const verified = await verifyRegistrationResponse({
    response,
    expectedChallenge: options.challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
    requireUserVerification: opts.passwordless === true,
  });
  expect(verified.verified).toBe(true);
  return { response, credential: verified.registrationInfo!.credential, prompts: p, verified };
}

async function verifyAssertion(
  response: Awaited<ReturnType<typeof authenticate>>,
  challenge: string,
  credential: WebAuthnCredential,
  uv = false,
) {
  const result = await verifyAuthenticationResponse({
    response,
    expectedChallenge: challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
    credential,
    requireUserVerification: uv,
  });
  expect(result.verified).toBe(true);
  return result;
}

describe('clientDataJSON', () => {
  it('serializes exactly as WebAuthn L3 §5.8.1.1: type, challenge, origin, crossOrigin', () => {
    const bytes = clientDataJSON({
      type: 'webauthn.get',
      challenge: 'AAEC_-8',
      origin: 'https://proxy.example.com:3080',
    });
    expect(Buffer.from(bytes).toString('utf8')).toBe(
      '{"type":"webauthn.get","challenge":"AAEC_-8","origin":"https://proxy.example.com:3080","crossOrigin":false}',
    );
    expect(() => clientDataJSON({ type: 'webauthn.get', challenge: 'a+b=', origin: ORIGIN })).toThrow(
      TypeError,
    );
    expect(() => clientDataJSON({ type: 'webauthn.get', challenge: 'ab', origin: 'https://x/path' })).toThrow(
      TypeError,
    );
    expect(originFor('proxy.example.com:3080')).toBe('https://proxy.example.com:3080');
    expect(originFor('proxy.example.com:443')).toBe('https://proxy.example.com');
  });
});

describe('openKeys', () => {
  it('opens the lab key only when KEYPORT_LAB_SECURITY_KEY is set, and labels it', async () => {
    const { soft } = await softKey();
    expect(await openKeys({ env: {} })).toEqual([]);
    const keys = await openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: soft.socketPath } });
    opened.push(...keys);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.kind).toBe('lab');
    expect(keys[0]!.label).toMatch(/^Lab security key/);
    expect((await keys[0]!.client.getInfo()).versions).toContain('FIDO_2_1');
  });
});

describe('register and authenticate with one key', () => {
  it('MFA: a non-resident credential, verified by @simplewebauthn/server', async () => {
    const { key } = await softKey();
    const { response, credential, verified } = await registerWith([key]);
    expect(response.response.transports).toEqual(['usb']);
    expect(response.clientExtensionResults).toEqual({ credProps: { rk: false } });
    expect(verified.registrationInfo!.fmt).toBe('packed');
    const options = await generateAuthenticationOptions({
      rpID: RP_ID,
      allowCredentials: [{ id: credential.id }],
      userVerification: 'discouraged',
    });
    const p = prompts();
    const assertion = await authenticate(options, { origin: ORIGIN, keys: [key], prompts: p });
    expect(assertion.id).toBe(credential.id);
    expect(assertion.response.userHandle).toBeUndefined();
    expect(p.log.pins).toEqual([]);
    await verifyAssertion(assertion, options.challenge, credential);
  });

  it('passwordless: resident key with PIN, user handle names the user', async () => {
    const { key } = await softKey({ pin: '1234' });
    const {
      response,
      credential,
      prompts: p,
    } = await registerWith([key], { passwordless: true, pins: ['1234'] });
    expect(response.clientExtensionResults).toEqual({ credProps: { rk: true } });
    expect(p.log.pins).toEqual([8]);
    const options = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    const q = prompts(['0000', '1234']);
    const assertion = await authenticate(options, { origin: ORIGIN, keys: [key], prompts: q });
    expect(q.log.pins).toEqual([8, 7]);
    expect(q.log.notices.some((n) => /7 attempts left/.test(n))).toBe(true);
    // Touch is automatic: the key answers before its first KEEPALIVE, so there is nothing to prompt.
    expect(q.log.taps).toEqual([]);
    expect(Buffer.from(assertion.response.userHandle!, 'base64url').toString()).toBe('user-alice');
    await verifyAssertion(assertion, options.challenge, credential, true);
  });

  it("passwordless with a user name typed: only that user's passkey counts, and nobody is asked", async () => {
    const { key } = await softKey({ pin: '1234' });
    await registerWith([key], { passwordless: true, pins: ['1234'], userID: 'alice' });
    const bob = await registerWith([key], { passwordless: true, pins: ['1234'], userID: 'bob' });
    const asked: (string | undefined)[][] = [];
    const choosing = (pins: string[], pick: string) => ({
      ...prompts(pins),
      chooseAccount: async (accounts: { name?: string }[]) => {
        asked.push(accounts.map((a) => a.name));
        return accounts.findIndex((a) => a.name === pick);
      },
    });

    const options = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    const asBob = await authenticate(options, {
      origin: ORIGIN,
      keys: [key],
      prompts: choosing(['1234'], 'alice'),
      user: 'bob',
    });
    expect(asked).toEqual([]);
    expect(Buffer.from(asBob.response.userHandle!, 'base64url').toString()).toBe('bob');
    await verifyAssertion(asBob, options.challenge, bob.credential, true);

    // No name typed: the person chooses among both accounts.
    const again = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    const chosen = await authenticate(again, {
      origin: ORIGIN,
      keys: [key],
      prompts: choosing(['1234'], 'bob'),
    });
    expect(asked.map((names) => [...names].sort())).toEqual([['alice', 'bob']]);
    expect(Buffer.from(chosen.response.userHandle!, 'base64url').toString()).toBe('bob');

    // A name with no passkey on this key: a clear NOT_FOUND, and still nobody is asked to choose.
    const third = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    await expect(
      authenticate(third, {
        origin: ORIGIN,
        keys: [key],
        prompts: choosing(['1234'], 'alice'),
        user: 'carol',
      }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('no passkey for "carol"'),
    });
    expect(asked).toHaveLength(1);
  });

  it('UV required on a key without a PIN asks for a new PIN and sets it', async () => {
    const { key } = await softKey();
    const { prompts: p } = await registerWith([key], { passwordless: true });
    expect(p.log.newPins).toBe(1);
    expect(p.log.pins).toEqual([]);
    expect(option(await key.client.getInfo(), 'clientPin')).toBe(true);
  });

  it('an excluded key says it is already registered', async () => {
    const { key } = await softKey();
    const { credential } = await registerWith([key]);
    const error = await registerWith([key], { exclude: [credential.id] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect((error as KeyportError).code).toBe('ALREADY_EXISTS');
  });

  it('a key without the credential says "The security key is not registered"', async () => {
    const { key: a } = await softKey();
    const { key: b } = await softKey();
    const { credential } = await registerWith([a]);
    const options = await generateAuthenticationOptions({
      rpID: RP_ID,
      allowCredentials: [{ id: credential.id }],
    });
    const p = prompts();
    const error = await authenticate(options, { origin: ORIGIN, keys: [b], prompts: p }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyportError);
    expect((error as KeyportError).code).toBe('NOT_FOUND');
    expect((error as Error).message).toMatch(/^The security key is not registered/);
    expect(p.log.notices).toEqual([SECURITY_KEY_MESSAGES.notRegistered]);
  });

  it('cancelling the ceremony sends CANCEL to the key and rejects with CANCELLED', async () => {
    const { soft, key } = await softKey({ touch: 'manual' });
    const controller = new AbortController();
    soft.events.once('up-needed', () => controller.abort());
    const cancelled = new Promise<void>((resolve) => soft.events.once('cancelled', () => resolve()));
    const options = await generateRegistrationOptions({
      rpName: 'Keyport test',
      rpID: RP_ID,
      userName: 'bob',
    });
    const error = await register(options, {
      origin: ORIGIN,
      keys: [key],
      prompts: prompts(),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await cancelled;
    expect(error).toBeInstanceOf(KeyportError);
    expect((error as KeyportError).code).toBe('CANCELLED');
  });
});

describe('several keys', () => {
  it('drops the key without the credential and takes the one touched', async () => {
    const a = await softKey({ touch: 'manual' });
    const b = await softKey({ touch: 'manual' });
    a.soft.events.once('up-needed', () => a.soft.touch('approve'));
    const { credential } = await registerWith([a.key]);
    const options = await generateAuthenticationOptions({
      rpID: RP_ID,
      allowCredentials: [{ id: credential.id }],
    });
    const p = prompts();
    a.soft.events.once('up-needed', () => setTimeout(() => a.soft.touch('approve'), 100));
    let bAskedForPresence = false;
    b.soft.events.once('up-needed', () => (bAskedForPresence = true));
    const assertion = await authenticate(options, { origin: ORIGIN, keys: [b.key, a.key], prompts: p });
    expect(bAskedForPresence).toBe(false);
    expect(p.log.notices).toEqual([`${SECURITY_KEY_MESSAGES.notRegistered}: ${b.key.label}`]);
    expect(p.log.taps).toEqual([SECURITY_KEY_MESSAGES.tap]);
    await verifyAssertion(assertion, options.challenge, credential);
  });

  it('asks both keys at once: the first touched wins, the other sees CANCEL', async () => {
    const a = await softKey({ touch: 'manual' });
    const b = await softKey({ touch: 'manual' });
    a.soft.events.once('up-needed', () => a.soft.touch('approve'));
    const regA = await registerWith([a.key]);
    b.soft.events.once('up-needed', () => b.soft.touch('approve'));
    const regB = await registerWith([b.key]);
    const options = await generateAuthenticationOptions({
      rpID: RP_ID,
      allowCredentials: [{ id: regA.credential.id }, { id: regB.credential.id }],
    });
    const bothWaiting = Promise.all([
      new Promise<void>((r) => a.soft.events.once('up-needed', () => r())),
      new Promise<void>((r) => b.soft.events.once('up-needed', () => r())),
    ]);
    void bothWaiting.then(() => setTimeout(() => b.soft.touch('approve'), 150));
    const aCancelled = new Promise<void>((r) => a.soft.events.once('cancelled', () => r()));
    const p = prompts();
    const assertion = await authenticate(options, { origin: ORIGIN, keys: [a.key, b.key], prompts: p });
    await aCancelled;
    expect(assertion.id).toBe(regB.credential.id);
    expect(p.log.taps).toEqual([SECURITY_KEY_MESSAGES.tap]);
    await verifyAssertion(assertion, options.challenge, regB.credential);
    // Both keys are usable afterwards.
    a.soft.events.once('up-needed', () => a.soft.touch('approve'));
    const again = await generateAuthenticationOptions({
      rpID: RP_ID,
      allowCredentials: [{ id: regA.credential.id }],
    });
    await verifyAssertion(
      await authenticate(again, { origin: ORIGIN, keys: [a.key], prompts: prompts() }),
      again.challenge,
      regA.credential,
    );
  });

  it('passwordless with two keys: a first touch picks the key, then its PIN, then a second touch', async () => {
    const a = await softKey({ pin: '1234', touch: 'manual' });
    const b = await softKey({ pin: '4321', touch: 'manual' });
    a.soft.events.on('up-needed', () => setTimeout(() => a.soft.touch('approve'), 150));
    const { credential } = await registerWith([a.key], { passwordless: true, pins: ['1234'] });
    const options = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    const p = prompts(['1234']);
    const assertion = await authenticate(options, { origin: ORIGIN, keys: [a.key, b.key], prompts: p });
    expect(p.log.notices).toEqual([`${SECURITY_KEY_MESSAGES.notRegistered}: ${b.key.label}`]);
    expect(p.log.taps).toEqual([SECURITY_KEY_MESSAGES.tap, SECURITY_KEY_MESSAGES.tapAgain]);
    await verifyAssertion(assertion, options.challenge, credential, true);
  });
});
