// Hardware keys, the client side (issue 10): session keys prepared on the lab's virtual PIV card on a real
// pcscd for each private-key policy (slot, PIN and touch policies, Keyport's mark, attestation, the
// factory PIN replaced first), reused when they fit, a foreign key never overwritten, PIN prompts (wrong,
// blocked), and the touch a signature waits for (always: each signature; cached: 15 s on the lab clock).
// Then `keyport login` end to end against a real keyport-auth whose roles require each of the four
// policies: the seed's two lines, the key made on a second card (driven only by CLI processes: libpcsclite
// reads PCSCLITE_CSOCK_NAME once per process), its attestation accepted, the profile naming slot and card,
// `keyport status --check` through a proof of possession signed by the card, reuse, slot overrides, PIN
// prompts, a foreign key left alone, and no private key anywhere in KEYPORT_HOME.
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, verify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PivError } from '../client/hardware/piv/errors';
import { isKeyportMarker, markerCertificate } from '../client/hardware/piv/marker';
import { profileSigner } from '../client/session';
import { openPivSession } from '../client/hardware/piv/session';
import type { PivSession } from '../client/hardware/piv/session';
import { choosePivSlot, NEW_PIN_NOTICE, preparePivSessionKey } from '../client/hardware/piv/session-key';
import type { PivSetupPrompts } from '../client/hardware/piv/session-key';
import { openCardSigner, openPivSigner, TAP_YOUR_YUBIKEY } from '../client/hardware/piv/signer';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { startLabPivCard } from '../lab/piv/lab';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';
import type { LabPivCard } from '../lab/piv/lab';
import {
  attestationRootsYaml,
  connectAsAdmin,
  hardwareKeyClusterYaml,
  repoRoot,
  runKeyport,
  startLabCluster,
} from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { RELOGIN_NOTICE } from '../client/ceremonies/hardware-key';
import { EXIT } from '../cli/exit-codes';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const NEW_PIN = '246810';
const NEW_PUK = '13579246';
const data = Buffer.from('keyport-pop-v1.claims');

/** Prompts that answer from lists and record what was asked and said. */
function scriptedPrompts(answers: { pins?: string[]; newPin?: string; newPuk?: string } = {}) {
  const pins = [...(answers.pins ?? [])];
  const asked: string[] = [];
  const prompts: PivSetupPrompts = {
    async pin(retriesLeft) {
      asked.push(retriesLeft === undefined ? 'pin' : `pin (${retriesLeft} left)`);
      const next = pins.shift();
      if (next === undefined) throw new Error('no PIN left to answer with');
      return next;
    },
    touch: (message) => asked.push(message),
    async newPin() {
      asked.push('new pin');
      return answers.newPin ?? NEW_PIN;
    },
    async newPuk() {
      asked.push('new puk');
      return answers.newPuk ?? NEW_PUK;
    },
    notice: (message) => asked.push(message),
  };
  return { prompts, asked };
}

async function rejection(promise: Promise<unknown>): Promise<PivError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PivError);
  return error as PivError;
}

describe('hardware-key session keys on the lab PIV card', () => {
  let card: LabPivCard;
  let clock: LabClock;
  let session: PivSession;

  beforeAll(async () => {
    clock = createLabClock();
    card = await startLabPivCard({ touch: 'auto', env: clock.env });
    session = await openPivSession({ socketPath: card.socketPath });
  }, 60_000);

  afterAll(async () => {
    await session?.close();
    await card?.stop();
    clock?.dispose();
  });

  /** Touches and GENERATEs the card counted while `work` ran. */
  async function counted<T>(work: () => Promise<T>) {
    let touches = 0;
    const count = () => touches++;
    card.events.on('touch-needed', count);
    await card.stats({ reset: true });
    try {
      const result = await work();
      const stats = await card.stats({ reset: true });
      return { result, touches, byIns: stats.byIns };
    } finally {
      card.events.off('touch-needed', count);
    }
  }

  it('asks for a PIN and PUK of the person on a card with the factory PIN, then prepares a touch-and-PIN key in 9d', async () => {
    const { prompts, asked } = scriptedPrompts();
    const slot = choosePivSlot('hardware_key_touch_and_pin', {}).slot;
    const prepared = await preparePivSessionKey({
      session,
      policy: 'hardware_key_touch_and_pin',
      slot,
      prompts,
    });
    expect(asked).toEqual([NEW_PIN_NOTICE, 'new pin', 'new puk']);
    expect(prepared).toMatchObject({
      slot: 0x9d,
      keyPolicy: { pin: 'once', touch: 'cached' },
      meets: 'hardware_key_touch_and_pin',
      serial: card.serial,
      reused: false,
    });
    expect(prepared.signer).toMatchObject({ source: 'piv', algorithm: 'ecdsa-p256', exportable: false });
    expect(prepared.signer.sshPublicKey).toMatch(/^ecdsa-sha2-nistp256 /);
    // The PIN and PUK are the person's now: the factory ones are refused.
    expect((await session.metadata(0x80)).isDefault).toBe(false);
    expect((await session.metadata(0x81)).isDefault).toBe(false);

    const metadata = await session.metadata(0x9d);
    expect(metadata).toMatchObject({ origin: 'generated', policy: { pin: 'once', touch: 'cached' } });
    expect(metadata.publicKey?.export({ format: 'pem', type: 'spki' })).toBe(prepared.signer.publicKeyPem);
    expect(isKeyportMarker(await session.readCertificate(0x9d), metadata.publicKey!)).toBe(true);

    // The attestation: the slot's certificate under the card's f9, which chains to the lab root.
    const attested = new X509Certificate(prepared.attestation.slotCertificate);
    const f9 = new X509Certificate(prepared.attestation.attestationCertificate);
    expect(attested.publicKey.equals(metadata.publicKey!)).toBe(true);
    expect(attested.verify(f9.publicKey)).toBe(true);
    expect(f9.verify(new X509Certificate(card.attestationRootPem).publicKey)).toBe(true);

    // The PIN was set in this session: the first signature needs no prompt for it, only the touch.
    const signed = await counted(() => prepared.signer.sign(data));
    expect(verify('sha256', data, prepared.signer.publicKeyPem, signed.result)).toBe(true);
    expect(signed.touches).toBe(1);
  });

  it('prepares each policy in its default slot with the matching PIN and touch policies', async () => {
    const cases = [
      { policy: 'hardware_key', slot: 0x9a, key: { pin: 'never', touch: 'never' } },
      { policy: 'hardware_key_touch', slot: 0x9c, key: { pin: 'never', touch: 'cached' } },
      { policy: 'hardware_key_pin', slot: 0x9e, key: { pin: 'once', touch: 'never' } },
    ] as const;
    for (const { policy, slot, key } of cases) {
      const { prompts, asked } = scriptedPrompts();
      const prepared = await preparePivSessionKey({
        session,
        policy,
        slot: choosePivSlot(policy, {}).slot,
        prompts,
      });
      expect(prepared).toMatchObject({ slot, keyPolicy: key, meets: policy, reused: false });
      expect(asked).toEqual([]); // the PIN is the person's already
      expect((await session.metadata(slot)).policy).toEqual(key);
    }
  });

  it('reuses the Keyport key in the slot when it fits: no GENERATE, the same key', async () => {
    const { prompts } = scriptedPrompts();
    const before = (await session.metadata(0x9c)).publicKey!;
    const again = await counted(() =>
      preparePivSessionKey({ session, policy: 'hardware_key_touch', slot: 0x9c, prompts }),
    );
    expect(again.result.reused).toBe(true);
    expect(again.byIns['47']).toBeUndefined(); // GENERATE ASYMMETRIC KEY PAIR
    expect(again.byIns.db).toBeUndefined(); // PUT DATA
    expect(again.result.signer.publicKeyPem).toBe(before.export({ format: 'pem', type: 'spki' }));
    // A stricter policy in the same slot replaces Keyport's own key (it is Keyport's to replace).
    const stricter = await preparePivSessionKey({
      session,
      policy: 'hardware_key_touch_and_pin',
      slot: 0x9c,
      prompts: scriptedPrompts().prompts,
    });
    expect(stricter.reused).toBe(false);
    expect(stricter.keyPolicy).toEqual({ pin: 'once', touch: 'cached' });
  });

  it('takes a slot override and leaves the default slot alone', async () => {
    const choice = choosePivSlot('hardware_key', { flag: '9e', cluster: '9c' });
    const before9a = (await session.metadata(0x9a)).publicKey!;
    const prepared = await preparePivSessionKey({
      session,
      policy: 'hardware_key',
      slot: choice.slot,
      prompts: scriptedPrompts().prompts,
    });
    // 9e held Keyport's PIN-once key: it meets hardware_key, so it is reused, in 9e.
    expect(prepared).toMatchObject({ slot: 0x9e, reused: true, meets: 'hardware_key_pin' });
    expect((await session.metadata(0x9a)).publicKey!.equals(before9a)).toBe(true);
  });

  it("does not overwrite another application's key in the slot, unless told to", async () => {
    // Another application's key in 9a (generated by it, with no Keyport mark).
    const foreign = await session.generate(0x9a, { pin: 'never', touch: 'never' });
    await session.writeCertificate(0x9a, new Uint8Array(new X509Certificate(card.attestationRootPem).raw));
    const refused = await rejection(
      preparePivSessionKey({
        session,
        policy: 'hardware_key',
        slot: 0x9a,
        prompts: scriptedPrompts().prompts,
      }),
    );
    expect(refused).toMatchObject({ reason: 'SLOT_IN_USE', code: 'ALREADY_EXISTS' });
    expect(refused.message).toContain('Slot 9a');
    expect(refused.message).toContain('--piv-slot');
    expect(refused.message).toContain('--piv-overwrite');
    expect((await session.metadata(0x9a)).publicKey!.equals(foreign)).toBe(true);

    const replaced = await preparePivSessionKey({
      session,
      policy: 'hardware_key',
      slot: 0x9a,
      overwrite: true,
      prompts: scriptedPrompts().prompts,
    });
    expect(replaced.reused).toBe(false);
    expect((await session.metadata(0x9a)).publicKey!.equals(foreign)).toBe(false);
  });

  it('signs with a touch-always key once per touch, saying "Tap your YubiKey" each time', async () => {
    const publicKey = await session.generate(0x9a, { pin: 'never', touch: 'always' });
    const { prompts, asked } = scriptedPrompts();
    const signer = openPivSigner({
      session,
      slot: 0x9a,
      publicKey,
      policy: { pin: 'never', touch: 'always' },
      prompts,
    });
    const signed = await counted(async () => [await signer.sign(data), await signer.sign(data)]);
    expect(signed.touches).toBe(2);
    for (const signature of signed.result) expect(verify('sha256', data, publicKey, signature)).toBe(true);
    expect(asked).toEqual([TAP_YOUR_YUBIKEY, TAP_YOUR_YUBIKEY]);
  });

  it('signs with a touch-cached key without a touch within 15 s (lab clock), and asks again after', async () => {
    const publicKey = await session.generate(0x9a, { pin: 'never', touch: 'cached' });
    const signer = openPivSigner({
      session,
      slot: 0x9a,
      publicKey,
      policy: { pin: 'never', touch: 'cached' },
      prompts: scriptedPrompts().prompts,
    });
    clock.advance(16_000); // past the touch the card cached for the last test's key
    const first = await counted(async () => {
      await signer.sign(data);
      clock.advance(14_000);
      await signer.sign(data);
    });
    expect(first.touches).toBe(1);
    clock.advance(2_000);
    const after = await counted(() => signer.sign(data));
    expect(after.touches).toBe(1);
    expect(verify('sha256', data, publicKey, after.result)).toBe(true);
  });

  it('says to reinsert a card pulled while a signature waits for its touch, and signs once it is back', async () => {
    const publicKey = await session.generate(0x9a, { pin: 'never', touch: 'always' });
    const signer = openPivSigner({
      session,
      slot: 0x9a,
      publicKey,
      policy: { pin: 'never', touch: 'always' },
      prompts: scriptedPrompts().prompts,
    });
    await card.setTouchMode('manual');
    try {
      const signing = signer.sign(data);
      await card.nextTouchRequest();
      await card.remove();
      const removed = await rejection(signing);
      expect(removed).toMatchObject({ reason: 'CARD_REMOVED', code: 'UNAVAILABLE' });
      expect(removed.message).toContain('Reinsert it');
      const back = session.waitForCard({ timeoutMs: 20_000 });
      await card.insert();
      await back;
      const signature = await card.touchingWhile(() => signer.sign(data));
      expect(verify('sha256', data, publicKey, signature)).toBe(true);
    } finally {
      await card.setTouchMode('auto');
    }
  });

  it("opens a profile's card only at the first signature, and refuses another card than the key's", async () => {
    const { publicKey } = (await session.metadata(0x9a)) as { publicKey: KeyObject };
    let opened = 0;
    const open = () => {
      opened++;
      return openPivSession({ socketPath: card.socketPath });
    };
    const policy = { pin: 'never', touch: 'always' } as const;
    const other = openCardSigner({
      serial: card.serial + 1,
      slot: 0x9a,
      publicKey,
      policy,
      prompts: scriptedPrompts().prompts,
      open,
    });
    expect(opened).toBe(0);
    const refused = await rejection(other.signer.sign(data));
    expect(refused).toMatchObject({ reason: 'CARD_CHANGED' });
    expect(refused.message).toContain(`serial ${card.serial + 1}`);
    await other.close();

    const right = openCardSigner({
      serial: card.serial,
      slot: 0x9a,
      publicKey,
      policy,
      prompts: scriptedPrompts().prompts,
      open,
    });
    expect(right.signer).toMatchObject({ source: 'piv', exportable: false });
    expect(verify('sha256', data, publicKey, await right.signer.sign(data))).toBe(true);
    expect(verify('sha256', data, publicKey, await right.signer.sign(data))).toBe(true);
    expect(opened).toBe(2); // one for the refused signer, one for this one's two signatures
    await right.close();

    // A profile whose key is on the card: profileSigner (the ssh-agent's default) signs with the card too.
    const certificate = new X509Certificate(markerCertificate(publicKey));
    const profile = {
      tlsCertPem: certificate.toString(),
      keystore: 'file',
      keyId: `piv/${card.serial}/9a`,
      hardwareKey: {
        slot: '9a',
        serial: card.serial,
        policy: 'hardware_key_touch',
        pinPolicy: 'never',
        touchPolicy: 'always',
      },
    } as Profile;
    const signer = profileSigner(new ProfileStore(join(tmpdir(), 'keyport-no-home')), profile);
    expect(signer).toMatchObject({ source: 'piv', exportable: false });
    expect(verify('sha256', data, publicKey, await signer.sign(data))).toBe(true);
  });

  it('asks the PIN again after a wrong one, with the attempts left; a blocked PIN says how to unblock it', async () => {
    const publicKey = await session.generate(0x9a, { pin: 'always', touch: 'never' });
    const policy = { pin: 'always', touch: 'never' } as const;
    const wrongThenRight = scriptedPrompts({ pins: ['000000', NEW_PIN] });
    const signer = openPivSigner({ session, slot: 0x9a, publicKey, policy, prompts: wrongThenRight.prompts });
    expect(verify('sha256', data, publicKey, await signer.sign(data))).toBe(true);
    expect(wrongThenRight.asked).toEqual(['pin', 'pin (2 left)']);

    const wrongAlways = scriptedPrompts({ pins: ['000000', '000001', '000002', NEW_PIN] });
    const blocking = openPivSigner({ session, slot: 0x9a, publicKey, policy, prompts: wrongAlways.prompts });
    const blocked = await rejection(blocking.sign(data));
    expect(blocked).toMatchObject({ reason: 'PIN_BLOCKED', code: 'LOCKED', retriesLeft: 0 });
    expect(blocked.message).toContain('Unblock it with the PUK');
    expect(wrongAlways.asked).toEqual(['pin', 'pin (2 left)', 'pin (1 left)']);

    await session.unblockPin(NEW_PUK, NEW_PIN);
    const digest = createHash('sha256').update(data).digest();
    expect(
      verify('sha256', data, publicKey, Buffer.from(await session.sign(0x9a, digest, { pin: NEW_PIN }))),
    ).toBe(true);
  });
});

describe('keyport login on a cluster whose roles require a hardware key', () => {
  const POLICIES = {
    ada: 'hardware_key',
    ben: 'hardware_key_touch',
    cy: 'hardware_key_pin',
    dee: 'hardware_key_touch_and_pin',
    eve: 'hardware_key',
  } as const;
  type Person = keyof typeof POLICIES;
  let card: LabPivCard;
  let cluster: LabCluster;
  let work: string;
  /** The card's clock: a cached touch lasts 15 s on it, so a test says when that has passed. */
  let cardClock: LabClock;
  const passwordOf = (person: Person) => hardwareKeyUserPassword(person);
  const homeOf = (person: Person) => join(work, person);

  beforeAll(async () => {
    cardClock = createLabClock();
    card = await startLabPivCard({ touch: 'auto', env: cardClock.env });
    work = await mkdtemp(join(tmpdir(), 'keyport-hardware-key-'));
    cluster = await startLabCluster({
      clusterName: 'hardware-keys',
      configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
    });
    await createHardwareKeyUsers(cluster, POLICIES);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await card?.stop();
    cardClock?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function login(
    person: Person,
    answers: string[] = [],
    extraArgs: string[] = [],
    env: Record<string, string> = {},
  ) {
    return runKeyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        person,
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
        ...extraArgs,
      ],
      { home: homeOf(person), input: [passwordOf(person), ...answers], env: { ...card.env, ...env } },
    );
  }

  function status(person: Person, answers: string[] = [], args: string[] = ['--check']) {
    return runKeyport(['status', ...args], { home: homeOf(person), input: answers, env: { ...card.env } });
  }

  async function profileOf(person: Person): Promise<Profile> {
    return (await new ProfileStore(homeOf(person)).getProfile()) as Profile;
  }

  /** The public key in a slot, as the card's state holds it (the lab card's state file is its own). */
  function slotKey(slot: string) {
    const state = JSON.parse(readFileSync(card.statePath, 'utf8')) as {
      slots: Record<string, { privateKeyPem: string; pinPolicy: number; touchPolicy: number }>;
    };
    const key = state.slots[slot];
    return (
      key && {
        publicKey: createPublicKey(createPrivateKey(key.privateKeyPem)),
        pin: key.pinPolicy,
        touch: key.touchPolicy,
      }
    );
  }

  function expectOk(result: CliResult): void {
    expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
  }

  /** Touches the card was asked for while `work` ran. */
  async function touchesDuring<T>(work: () => Promise<T>): Promise<{ result: T; touches: number }> {
    let touches = 0;
    const count = () => touches++;
    card.events.on('touch-needed', count);
    try {
      return { result: await work(), touches };
    } finally {
      card.events.off('touch-needed', count);
    }
  }

  function expectNoPrivateKey(home: string): void {
    const files = readdirSync(home, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file).not.toContain(`${join(home, 'keys')}/`);
      const content = readFileSync(file, 'utf8');
      expect(content, `${file} holds a private key`).not.toMatch(/PRIVATE KEY|"d":/);
    }
  }

  it("hardware_key: says the seed's two lines, makes the key in 9a and logs in with it; KEYPORT_HOME holds no private key", async () => {
    const result = await login('ada');
    expectOk(result);
    expect(result.stderr).toContain(`Unmet private key policy "hardware_key".\n${RELOGIN_NOTICE}\n`);
    const profile = await profileOf('ada');
    expect(profile.hardwareKey).toEqual({
      slot: '9a',
      serial: card.serial,
      policy: 'hardware_key',
      pinPolicy: 'never',
      touchPolicy: 'never',
    });
    expect(new X509Certificate(profile.tlsCertPem).publicKey.equals(slotKey('9a')!.publicKey)).toBe(true);
    expect(slotKey('9a')).toMatchObject({ pin: 1, touch: 1 });
    expectNoPrivateKey(homeOf('ada'));

    const shown = await status('ada', [], []);
    expectOk(shown);
    expect(shown.stdout).toContain(
      `PIV slot 9a of card ${card.serial}, hardware_key (touch never, PIN never)`,
    );
    const checked = await status('ada');
    expectOk(checked);
    expect(checked.stdout).toContain('accepted by hardware-keys as ada');
  });

  it('hardware_key_touch: a key in 9c with a cached touch; a call through the card asks for the touch', async () => {
    const result = await login('ben');
    expectOk(result);
    expect(result.stderr).toContain(`Unmet private key policy "hardware_key_touch".\n${RELOGIN_NOTICE}\n`);
    expect((await profileOf('ben')).hardwareKey).toMatchObject({
      slot: '9c',
      policy: 'hardware_key_touch',
      touchPolicy: 'cached',
    });
    expect(slotKey('9c')).toMatchObject({ pin: 1, touch: 3 });
    cardClock.advance(16_000); // past the touch the login's own signature cached
    const checked = await touchesDuring(() => status('ben'));
    expectOk(checked.result);
    expect(checked.touches).toBeGreaterThanOrEqual(1);
    expectNoPrivateKey(homeOf('ben'));
  });

  it("hardware_key_pin: a card on the factory PIN gets the person's PIN and PUK first; calls ask for the PIN", async () => {
    const result = await login('cy', [NEW_PIN, NEW_PUK]);
    expectOk(result);
    expect(result.stderr).toContain(`Unmet private key policy "hardware_key_pin".\n${RELOGIN_NOTICE}\n`);
    expect(result.stderr).toContain(NEW_PIN_NOTICE);
    expect(result.stderr).toContain('Enter a new PIV PIN (6 to 8 characters):');
    expect(result.stderr).toContain('Enter a new PIV PUK (6 to 8 characters):');
    expect((await profileOf('cy')).hardwareKey).toMatchObject({
      slot: '9e',
      policy: 'hardware_key_pin',
      pinPolicy: 'once',
    });
    expect(slotKey('9e')).toMatchObject({ pin: 2, touch: 1 });

    const checked = await status('cy', [NEW_PIN]);
    expectOk(checked);
    expect(checked.stderr).toContain('Enter your PIV PIN:');
    // A wrong PIN: asked again with the attempts left.
    const wrongFirst = await status('cy', ['000000', NEW_PIN]);
    expectOk(wrongFirst);
    expect(wrongFirst.stderr).toContain('Enter your PIV PIN (2 attempts left):');
  });

  it("hardware_key_touch_and_pin: a key in 9d; the PIN is the person's already, calls ask for PIN and touch", async () => {
    const result = await login('dee');
    expectOk(result);
    expect(result.stderr).toContain(
      `Unmet private key policy "hardware_key_touch_and_pin".\n${RELOGIN_NOTICE}\n`,
    );
    expect(result.stderr).not.toContain('new PIV PIN');
    expect((await profileOf('dee')).hardwareKey).toMatchObject({
      slot: '9d',
      policy: 'hardware_key_touch_and_pin',
      pinPolicy: 'once',
      touchPolicy: 'cached',
    });
    cardClock.advance(16_000); // past the touch the login's own signature cached
    const checked = await touchesDuring(() => status('dee', [NEW_PIN]));
    expectOk(checked.result);
    expect(checked.result.stderr).toContain('Enter your PIV PIN:');
    expect(checked.touches).toBeGreaterThanOrEqual(1);
  });

  it('a second login reuses the key in the slot and says nothing about a relogin', async () => {
    const before = slotKey('9c')!.publicKey;
    const result = await login('ben');
    expectOk(result);
    expect(result.stderr).not.toContain('Unmet private key policy');
    const profile = await profileOf('ben');
    expect(new X509Certificate(profile.tlsCertPem).publicKey.equals(before)).toBe(true);
    expect(slotKey('9c')!.publicKey.equals(before)).toBe(true);
    expectOk(await status('ben'));
  });

  it("takes --piv-slot, then KEYPORT_PIV_SLOT, over the policy's slot", async () => {
    // 9d holds Keyport's touch-and-PIN key: it meets hardware_key, so it is reused there.
    const flagged = await login('ada', [], ['--piv-slot', '9d'], { KEYPORT_PIV_SLOT: '9c' });
    expectOk(flagged);
    expect((await profileOf('ada')).hardwareKey).toMatchObject({
      slot: '9d',
      policy: 'hardware_key_touch_and_pin',
    });
    const fromEnv = await login('ada', [], [], { KEYPORT_PIV_SLOT: '9c' });
    expectOk(fromEnv);
    expect((await profileOf('ada')).hardwareKey).toMatchObject({ slot: '9c', policy: 'hardware_key_touch' });
    expectNoPrivateKey(homeOf('ada'));
  });

  it("does not overwrite another application's key in the slot, and replaces it with --piv-overwrite", async () => {
    // Another application generates a key in 9a, with no Keyport mark.
    const generated = await runNode(
      `import { openPivSession } from './client/hardware/piv/session.ts';
       const session = await openPivSession();
       await session.generate(0x9a, { pin: 'never', touch: 'never' });
       await session.close();`,
      card.env,
    );
    expect(generated.code, generated.stderr).toBe(0);
    const foreign = slotKey('9a')!.publicKey;

    const refused = await login('eve');
    expect(refused.code).toBe(EXIT.notFound);
    expect(refused.stderr).toContain(`ERROR: Slot 9a of your PIV card (serial ${card.serial}) holds a key`);
    expect(refused.stderr).toContain('--piv-overwrite');
    expect(slotKey('9a')!.publicKey.equals(foreign)).toBe(true);
    expect(await profileOf('eve')).toBeUndefined();

    const replaced = await login('eve', [], ['--piv-overwrite']);
    expectOk(replaced);
    expect(slotKey('9a')!.publicKey.equals(foreign)).toBe(false);
    expect((await profileOf('eve')).hardwareKey).toMatchObject({ slot: '9a', policy: 'hardware_key' });
  });
});

describe('a passwordless login refused for its key relogs in with the card', () => {
  // Passwordless step one names no user, so it can only tell the cap's policy: a role's policy is met at
  // Login, which refuses the software key; the client then relogs in, from step one, with the card's key.
  let card: LabPivCard;
  let cluster: LabCluster;
  let key: SoftKey;
  let work: string;
  const KEY_PIN = '2468';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-hardware-relogin-'));
    card = await startLabPivCard({ touch: 'auto' });
    cluster = await startLabCluster({
      clusterName: 'hardware-relogin',
      configYaml: `${connectClusterConfig()}${attestationRootsYaml(card.attestationRootPem)}`,
    });
    key = await startSoftKey({
      socketPath: join(work, 'key.sock'),
      statePath: join(work, 'key.json'),
      touch: 'auto:20',
      pin: KEY_PIN,
    });
    const admin = await connectAsAdmin(cluster);
    try {
      await admin.admin.createResources({
        documentsJson: [
          JSON.stringify({
            kind: 'role',
            version: 'v7',
            metadata: { name: 'critical' },
            spec: { options: { require_session_mfa: 'hardware_key_touch' }, allow: { logins: ['root'] } },
          }),
        ],
        force: false,
      });
    } finally {
      admin.close();
    }
    await signUpWithLabKey(cluster, {
      user: 'pia',
      roles: ['access', 'critical'],
      password: 'pia-password-123',
      keySocket: key.socketPath,
      pin: KEY_PIN,
    });
  }, 120_000);

  afterAll(async () => {
    await key?.stop();
    await cluster?.stop();
    await card?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("says the seed's two lines after the refusal, asks the security key again, and logs in with the card's key", async () => {
    const home = join(work, 'pia');
    const result = await runKeyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--ca-pin',
        cluster.caPin,
        '--auth',
        'passwordless',
        '--keystore',
        'file',
      ],
      { home, input: [KEY_PIN, KEY_PIN], env: { ...card.env, [LAB_SECURITY_KEY_ENV]: key.socketPath } },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`Unmet private key policy "hardware_key_touch".\n${RELOGIN_NOTICE}\n`);
    // The security key's PIN is asked once per ceremony: the refused one and the relogin.
    expect(result.stderr.match(/Enter the PIN of your security key/g)).toHaveLength(2);
    const profile = (await new ProfileStore(home).getProfile()) as Profile;
    expect(profile).toMatchObject({ user: 'pia', hardwareKey: { slot: '9c', policy: 'hardware_key_touch' } });
    const checked = await runKeyport(['status', '--check'], { home, env: { ...card.env } });
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain('accepted by hardware-relogin as pia');

    // The next passwordless login goes to the card at once: no refusal, one security-key ceremony.
    const again = await runKeyport(
      ['login', '--cluster', cluster.address, '--auth', 'passwordless', '--keystore', 'file'],
      { home, input: [KEY_PIN], env: { ...card.env, [LAB_SECURITY_KEY_ENV]: key.socketPath } },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('Unmet private key policy');
    expect(again.stderr.match(/Enter the PIN of your security key/g)).toHaveLength(1);
    const next = (await new ProfileStore(home).getProfile()) as Profile;
    expect(next.hardwareKey).toMatchObject({ slot: '9c', policy: 'hardware_key_touch' });
    expect(
      new X509Certificate(next.tlsCertPem).publicKey.equals(
        new X509Certificate(profile.tlsCertPem).publicKey,
      ),
    ).toBe(true);
  });
});

/** A TypeScript module run in its own process (its own libpcsclite, so its own PCSCLITE_CSOCK_NAME). */
function runNode(code: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (exitCode) => resolve({ code: exitCode, stdout, stderr }));
  });
}
