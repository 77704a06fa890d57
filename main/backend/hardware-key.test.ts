// Keyport Connect's backend with a PIV card (issue 10): the lab's virtual card on a real pcscd and a real
// keyport-auth. The person signed in with a software key; an admin raises their role's
// require_session_mfa; the app's next call is refused with PRIVATE_KEY_POLICY_NOT_MET and relogs in by
// itself: a `relogin` prompt with the seed's two lines and the password, the key made on the card, "Tap your
// YubiKey" while the card signs, then the call runs again. A touch refused, a wrong password or a cancel
// leaves KEYPORT_HOME byte for byte as it was. Then the PIN prompts: a new PIN and PUK for a card on the
// factory ones, the attempts left after a wrong PIN, and the blocked PIN's message; a PIN-"once" key asks
// its PIN once across the app's calls (one card session), again after a sign-out.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RELOGIN_NOTICE } from '../../client/ceremonies/hardware-key';
import { ProfileStore } from '../../client/profiles';
import type { Profile } from '../../client/profiles';
import { startLabPivCard } from '../../lab/piv/lab';
import type { LabPivCard } from '../../lab/piv/lab';
import { hardwareKeyClusterYaml, startLabCluster } from '../../lab/cluster';
import { folderSnapshot } from '../../lab/folder-snapshot';
import {
  createHardwareKeyUsers,
  hardwareKeyUserPassword,
  raiseHardwareKeyPolicy,
} from '../../lab/hardware-key-users';
import type { LabCluster } from '../../lab/cluster';
import type { EventPayloads, Prompt, PromptAnswer } from '../../preload/contract';
import { createBackend } from './backend';
import type { Backend } from './backend';

const USER = 'ivy';
const PASSWORD = hardwareKeyUserPassword(USER);
const NEW_PIN = '246810';
const NEW_PUK = '13579246';
const UNMET_TOUCH = 'Unmet private key policy "hardware_key_touch".';

let card: LabPivCard;
let cluster: LabCluster;
let work: string;
let home: string;
let profiles: ProfileStore;
let backend: Backend;
/** Every prompt shown, in order. */
let shown: Prompt[] = [];
/** Every prompt and result of the file, for the scan for secrets at its end. */
const seen: unknown[] = [];
/** Everything the backend wrote to the console (searched for secrets at the end). */
const logged: string[] = [];
/** Every profile change reported. */
const changes: EventPayloads['onProfileChanged'][] = [];
/** How the next prompts are answered, by kind; a kind without an answer is left open. */
let script: Partial<
  Record<Prompt['kind'], (prompt: Prompt) => PromptAnswer | 'cancel' | 'touch' | 'deny' | undefined>
> = {};

/** Every file in KEYPORT_HOME with its contents. */
const homeFiles = () => folderSnapshot(home);

function slotKey(slot: string) {
  const state = JSON.parse(readFileSync(card.statePath, 'utf8')) as {
    slots: Record<string, { privateKeyPem: string }>;
  };
  const key = state.slots[slot];
  return key && createPublicKey(createPrivateKey(key.privateKeyPem));
}

async function currentProfile(): Promise<Profile> {
  const profile = await profiles.getProfile();
  if (!profile) throw new Error('no profile');
  return profile;
}

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const write = console[level].bind(console);
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
      write(...args);
    });
  }
  card = await startLabPivCard({ touch: 'manual' });
  // libpcsclite reads it once per process: this file's backend talks to this card's pcscd.
  process.env.PCSCLITE_CSOCK_NAME = card.socketPath;
  work = await mkdtemp(join(tmpdir(), 'keyport-connect-piv-'));
  home = join(work, 'home');
  cluster = await startLabCluster({
    clusterName: 'connect-piv',
    configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
  });
  await createHardwareKeyUsers(cluster, { [USER]: 'none' });
  profiles = new ProfileStore(home);
  backend = createBackend({ profiles, keystoreKind: 'file', env: {}, watchProfiles: false });
  backend.on('onProfileChanged', (change) => changes.push(change));
  backend.on('onPrompt', (prompt) => {
    shown.push(prompt);
    seen.push(prompt);
    const answer = script[prompt.kind]?.(prompt);
    if (answer === undefined) return;
    if (answer === 'cancel') void backend.handlers['prompts.cancel']({ id: prompt.id });
    // The card's touch: given once the card asks for it (the prompt may come first).
    else if (answer === 'touch') void card.nextTouchRequest().then(() => card.touch('approve'));
    // The person refuses (a YubiKey left untouched says the same, after 15 s): this touch and any other.
    else if (answer === 'deny')
      void card
        .nextTouchRequest()
        .then(() => card.touch('deny'))
        .then(() => card.setTouchMode('denied'));
    else void backend.handlers['prompts.answer']({ id: prompt.id, value: answer });
  });
  // Signed in while no hardware key is required: a software key in the file keystore.
  const trusted = await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin });
  expect(trusted.ok).toBe(true);
  const login = await backend.handlers['auth.login']({
    address: cluster.address,
    user: USER,
    password: PASSWORD,
  });
  expect(login).toMatchObject({ ok: true, value: { user: USER, sessionKey: { kind: 'file' } } });
  expect(shown).toEqual([]);
  expect(await backend.handlers['mfa.list']()).toEqual({ ok: true, value: [] });
  await raiseHardwareKeyPolicy(cluster, 'hardware_key_touch');
}, 180_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await backend?.close();
  await cluster?.stop();
  await card?.stop();
  delete process.env.PCSCLITE_CSOCK_NAME;
  if (work) await rm(work, { recursive: true, force: true });
});

describe("Keyport Connect's backend relogs in with the PIV card when a call is refused for the key policy", () => {
  it('a touch refused: a clear error, and KEYPORT_HOME as it was (the old profile and key kept)', async () => {
    const before = homeFiles();
    shown = [];
    script = {
      relogin: () => ({ kind: 'relogin', password: PASSWORD }),
      pivTouch: () => 'deny',
    };
    try {
      const result = await backend.handlers['mfa.list']();
      expect(result).toMatchObject({
        ok: false,
        error: { code: 'ACCESS_DENIED', details: { pivCode: 'SECURITY_STATUS_NOT_SATISFIED' } },
      });
      if (!result.ok) expect(result.error.message).toMatch(/not touched in time/);
    } finally {
      await card.setTouchMode('manual');
    }
    // A refused touch of a PIN-never key asks no PIN: no PIN helps it.
    expect(shown.map((p) => p.kind).filter((k) => k !== 'notice')).toEqual(['relogin', 'pivTouch']);
    expect(shown[0]).toMatchObject({
      kind: 'relogin',
      cluster: cluster.address,
      user: USER,
      reason: [UNMET_TOUCH, RELOGIN_NOTICE],
      passwordless: false,
    });
    expect(shown[1]).toMatchObject({ kind: 'pivTouch', message: 'Tap your YubiKey' });
    expect(homeFiles()).toEqual(before);
    expect((await currentProfile()).hardwareKey).toBeUndefined();
    // The card keeps Keyport's key in 9c for the next attempt.
    expect(slotKey('9c')).toBeDefined();
  });

  it('a wrong password or a cancelled relogin prompt: their errors, and KEYPORT_HOME as it was', async () => {
    const before = homeFiles();
    script = { relogin: () => ({ kind: 'relogin', password: 'not-the-password-123' }) };
    expect(await backend.handlers['mfa.list']()).toMatchObject({
      ok: false,
      error: { code: 'ACCESS_DENIED' },
    });
    script = { relogin: () => 'cancel' };
    expect(await backend.handlers['device.status']()).toMatchObject({
      ok: false,
      error: { code: 'CANCELLED' },
    });
    // A password cluster's relogin prompt is answered with the password, never without.
    shown = [];
    script = {};
    const pending = backend.handlers['mfa.list']();
    await expect.poll(() => shown.length).toBe(1);
    const missing = await backend.handlers['prompts.answer']({
      id: shown[0]!.id,
      value: { kind: 'relogin' },
    });
    expect(missing).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'value.password' } },
    });
    await backend.handlers['prompts.cancel']({ id: shown[0]!.id });
    expect(await pending).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
    expect(homeFiles()).toEqual(before);
  });

  it('relogs in once for calls refused together, asks for the touch, and each call completes', async () => {
    shown = [];
    changes.length = 0;
    const old = await currentProfile();
    script = { relogin: () => ({ kind: 'relogin', password: PASSWORD }), pivTouch: () => 'touch' };
    // The Account screen asks both at once when it opens.
    const [devices, device] = await Promise.all([
      backend.handlers['mfa.list'](),
      backend.handlers['device.status'](),
    ]);
    expect(devices).toEqual({ ok: true, value: [] });
    expect(device).toMatchObject({ ok: true, value: { mode: 'off' } });
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
    expect(shown.map((p) => p.kind)).toContain('pivTouch');

    const profile = await currentProfile();
    expect(profile).toMatchObject({
      user: USER,
      hardwareKey: { slot: '9c', serial: card.serial, policy: 'hardware_key_touch', touchPolicy: 'cached' },
    });
    expect(new X509Certificate(profile.tlsCertPem).publicKey.equals(slotKey('9c')!)).toBe(true);
    const view = {
      kind: 'piv',
      slot: '9c',
      policy: 'hardware_key_touch',
      touchPolicy: 'cached',
      pinPolicy: 'never',
    };
    expect(changes).toEqual([
      {
        address: cluster.address,
        profile: expect.objectContaining({ sessionKey: { ...view, serial: card.serial } }),
      },
    ]);
    expect(await backend.handlers['auth.status']()).toMatchObject({ ok: true, value: { sessionKey: view } });
    // The old software key is gone; no private key anywhere in KEYPORT_HOME, no staging folder left.
    for (const [path, content] of Object.entries(homeFiles())) {
      expect(path).not.toContain(old.keyId.replace(/[^A-Za-z0-9.-]/g, '_'));
      expect(content, `${path} holds a private key`).not.toMatch(/PRIVATE KEY|"d":/);
    }
    expect(readdirSync(home).filter((name) => name.startsWith('.relogin-'))).toEqual([]);

    // The next call goes through the card at once: no relogin.
    shown = [];
    expect(await backend.handlers['mfa.list']()).toEqual({ ok: true, value: [] });
    expect(shown.map((p) => p.kind).filter((kind) => kind !== 'pivTouch')).toEqual([]);
  });

  it('sets a PIN and PUK on a card with the factory ones, shows the attempts left, and says how to unblock a blocked PIN', async () => {
    await raiseHardwareKeyPolicy(cluster, 'hardware_key_touch_and_pin');
    shown = [];
    let wrongPins = 1;
    script = {
      relogin: () => ({ kind: 'relogin', password: PASSWORD }),
      newPivPin: (prompt) => ({
        kind: 'newPivPin',
        value: prompt.kind === 'newPivPin' && prompt.secret === 'puk' ? NEW_PUK : NEW_PIN,
      }),
      pivPin: () => ({ kind: 'pivPin', pin: wrongPins-- > 0 ? '999999' : NEW_PIN }),
      pivTouch: () => 'touch',
    };
    expect(await backend.handlers['mfa.list']()).toEqual({ ok: true, value: [] });
    const kinds = shown.map((p) => p.kind);
    expect(kinds.slice(0, 3)).toEqual(['relogin', 'newPivPin', 'newPivPin']);
    expect(shown.slice(1, 3)).toMatchObject([{ secret: 'pin' }, { secret: 'puk' }]);
    expect(shown[0]).toMatchObject({
      reason: ['Unmet private key policy "hardware_key_touch_and_pin".', RELOGIN_NOTICE],
    });
    // A wrong PIN is asked again with the attempts left.
    const pins = shown.filter((p) => p.kind === 'pivPin');
    expect(pins[0]).toEqual({ kind: 'pivPin', id: pins[0]!.id });
    expect(pins[1]).toMatchObject({ kind: 'pivPin', retriesLeft: 2 });
    expect((await currentProfile()).hardwareKey).toMatchObject({
      slot: '9d',
      policy: 'hardware_key_touch_and_pin',
      pinPolicy: 'once',
    });

    // Signed out and in again through the app's own login form: the key in 9d is reused, nothing asked again.
    expect(await backend.handlers['auth.logout']()).toMatchObject({ ok: true });
    shown = [];
    const again = await backend.handlers['auth.login']({
      address: cluster.address,
      user: USER,
      password: PASSWORD,
    });
    expect(again).toMatchObject({ ok: true, value: { sessionKey: { kind: 'piv', slot: '9d' } } });
    expect(shown.map((p) => p.kind)).not.toContain('relogin');
    expect(shown.map((p) => p.kind)).not.toContain('newPivPin');

    // The key's PIN is "once": asked once while the card stays in, however many calls (the Account screen
    // asks two at once), since the backend keeps one card session (the login's own ended, so the first
    // call asks it).
    shown = [];
    script = { pivPin: () => ({ kind: 'pivPin', pin: NEW_PIN }), pivTouch: () => 'touch' };
    const account = await Promise.all([backend.handlers['mfa.list'](), backend.handlers['device.status']()]);
    expect(account).toMatchObject([{ ok: true }, { ok: true }]);
    expect(await backend.handlers['mfa.list']()).toMatchObject({ ok: true });
    expect(await backend.handlers['device.status']()).toMatchObject({ ok: true });
    expect(shown.filter((p) => p.kind === 'pivPin')).toHaveLength(1);
    // Signing out ends the card session: signed in again, the PIN is asked again.
    expect(await backend.handlers['auth.logout']()).toMatchObject({ ok: true });
    expect(
      await backend.handlers['auth.login']({ address: cluster.address, user: USER, password: PASSWORD }),
    ).toMatchObject({ ok: true });

    // Wrong, wrong, wrong: the PIN blocks, and the error says how to unblock it.
    shown = [];
    script = { pivPin: () => ({ kind: 'pivPin', pin: '999999' }), pivTouch: () => 'touch' };
    const blocked = await backend.handlers['mfa.list']();
    expect(blocked).toMatchObject({
      ok: false,
      error: { code: 'LOCKED', details: { pivCode: 'PIN_BLOCKED', retriesLeft: 0 } },
    });
    if (!blocked.ok) expect(blocked.error.message).toContain('Unblock it with the PUK');
    seen.push(blocked, changes, await backend.handlers['auth.status']());
    expect(
      shown.filter((p) => p.kind === 'pivPin').map((p) => (p.kind === 'pivPin' ? p.retriesLeft : -1)),
    ).toEqual([undefined, 2, 1]);
  });

  it('no prompt, event, result or console line carried a password, PIN, PUK, certificate or key (invariant 1)', async () => {
    const profile = await currentProfile();
    const everything = JSON.stringify(seen) + logged.join('\n');
    expect(everything.length).toBeGreaterThan(1000);
    for (const secret of [
      PASSWORD,
      NEW_PIN,
      NEW_PUK,
      'PRIVATE KEY',
      'BEGIN CERTIFICATE',
      'keyId',
      profile.keyId,
      profile.tlsCertPem.split('\n')[1]!,
      profile.sshCertificate.split(' ')[1]!,
    ]) {
      expect(everything).not.toContain(secret);
    }
  });
});
