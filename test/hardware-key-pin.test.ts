// The PIV PIN end to end (issue 10, seed "Hardware Key Support"): a card on the factory PIN gets the
// person's PIN and PUK during `keyport login` (a refused new PIN changes nothing), a wrong PIN shows the
// attempts left, a blocked PIN says how to unblock it, and `keyport piv unblock` unblocks it with the PUK
// (RESET RETRY COUNTER); a wrong PUK shows its attempts left and a blocked PUK says that only a reset
// helps. Every refusal leaves the card's PIN and PUK, the profile and KEYPORT_HOME as they were. One lab
// card on a real pcscd, driven by CLI processes; a real keyport-auth whose role requires hardware_key_pin.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEW_PIN_NOTICE } from '../client/hardware/piv/session-key';
import { PIN_BLOCKED_NOTICE } from '../client/hardware/piv/pin';
import { ProfileStore } from '../client/profiles';
import { EXIT } from '../cli/exit-codes';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import { padReference } from '../lab/piv/state';
import { hardwareKeyClusterYaml, runKeyport, startLabCluster } from '../lab/cluster';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';
import type { CliResult, LabCluster } from '../lab/cluster';

const PIN = '246810';
const PUK = '13579246';
const UNBLOCKED_PIN = '975310';
const PASSWORD = hardwareKeyUserPassword('cy');

interface CardSecrets {
  pin: { paddedHex: string; retries: number };
  puk: { paddedHex: string; retries: number };
}

describe('the PIV PIN: set at login, wrong, blocked, unblocked with the PUK', () => {
  let card: LabPivCard;
  let cluster: LabCluster;
  let work: string;
  const home = () => join(work, 'cy');

  beforeAll(async () => {
    card = await startLabPivCard({ touch: 'auto' });
    work = await mkdtemp(join(tmpdir(), 'keyport-piv-pin-'));
    cluster = await startLabCluster({
      clusterName: 'piv-pin',
      configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
    });
    await createHardwareKeyUsers(cluster, { cy: 'hardware_key_pin' });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await card?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The card's PIN and PUK as its state file holds them (the lab card is a separate implementation). */
  function secrets(): CardSecrets {
    return JSON.parse(readFileSync(card.statePath, 'utf8')) as CardSecrets;
  }

  function keyport(args: string[], input: string[] = []): Promise<CliResult> {
    return runKeyport(args, { home: home(), input, env: { ...card.env } });
  }

  function login(answers: string[]): Promise<CliResult> {
    return keyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'cy',
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      [PASSWORD, ...answers],
    );
  }

  const profile = () => new ProfileStore(home()).getProfile();

  it('refuses a new PIN the card would not take before the card sees it: the factory PIN stays, no profile', async () => {
    const before = secrets();
    expect(before.pin.paddedHex).toBe(padReference('123456'));
    for (const [newPin, said] of [
      ['12345', 'A PIV PIN is 6 to 8 characters long'],
      ['123456', 'Choose a PIN other than the default 123456'],
    ] as const) {
      const refused = await login([newPin, PUK]);
      expect(refused.code, refused.stderr).toBe(EXIT.invalidInput);
      expect(refused.stderr).toContain(NEW_PIN_NOTICE);
      expect(refused.stderr).toContain(said);
      expect(refused.stderr).not.toContain('Enter a new PIV PUK');
      expect(secrets()).toEqual(before);
      expect(await profile()).toBeUndefined();
      expect(existsSync(join(home(), 'keys'))).toBe(false);
    }
  });

  it("sets the person's PIN and PUK during login on a card with the factory ones", async () => {
    const result = await login([PIN, PUK]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(NEW_PIN_NOTICE);
    expect(secrets().pin.paddedHex).toBe(padReference(PIN));
    expect(secrets().puk.paddedHex).toBe(padReference(PUK));
    expect(await profile()).toMatchObject({ hardwareKey: { slot: '9e', policy: 'hardware_key_pin' } });
    // Step one said the policy, so the login went straight to the card: no software key was ever written
    // (the file keystore makes its folder at its first write, and nothing removes it).
    expect(existsSync(join(home(), 'keys'))).toBe(false);
  });

  it('shows the attempts left after a wrong PIN; a blocked PIN says to run `keyport piv unblock`', async () => {
    const saved = await profile();
    const result = await keyport(['status', '--check'], ['000000', '000001', '000002']);
    expect(result.code, result.stderr).toBe(EXIT.locked);
    expect(result.stderr).toContain('Enter your PIV PIN:\n');
    expect(result.stderr).toContain('Enter your PIV PIN (2 attempts left):');
    expect(result.stderr).toContain('Enter your PIV PIN (1 attempt left):');
    expect(result.stderr).toContain('ERROR: The PIN of your PIV card is blocked');
    expect(result.stderr).toContain('`keyport piv unblock`');
    expect(secrets().pin).toEqual({ paddedHex: padReference(PIN), retries: 0, maxRetries: 3 });
    expect(await profile()).toEqual(saved);

    const stillBlocked = await keyport(['status', '--check'], [PIN]);
    expect(stillBlocked.code).toBe(EXIT.locked);
    expect(stillBlocked.stderr).toContain('`keyport piv unblock`');
  });

  it('`keyport piv unblock` refuses a wrong PUK with its attempts left, and a short new PIN before the card sees it', async () => {
    const before = secrets();
    const wrongPuk = await keyport(['piv', 'unblock'], ['87654321', UNBLOCKED_PIN]);
    expect(wrongPuk.code, wrongPuk.stderr).toBe(EXIT.mfa);
    expect(wrongPuk.stderr).toContain(PIN_BLOCKED_NOTICE);
    expect(wrongPuk.stderr).toContain('Enter the PUK of your PIV card:');
    expect(wrongPuk.stderr).toContain('ERROR: Wrong PUK (2 attempts left)');
    expect(secrets()).toEqual({ ...before, puk: { ...before.puk, retries: 2 } });

    const shortPin = await keyport(['piv', 'unblock'], [PUK, '975']);
    expect(shortPin.code, shortPin.stderr).toBe(EXIT.invalidInput);
    expect(shortPin.stderr).toContain('A PIV PIN is 6 to 8 characters long');
    expect(secrets()).toEqual({ ...before, puk: { ...before.puk, retries: 2 } });
  });

  it('`keyport piv unblock` with the PUK sets a new PIN, and the session signs with it', async () => {
    const result = await keyport(['piv', 'unblock'], [PUK, UNBLOCKED_PIN]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('The PIN of your PIV card is set and unblocked.');
    expect(secrets().pin).toMatchObject({ paddedHex: padReference(UNBLOCKED_PIN), retries: 3 });
    expect(secrets().puk.retries).toBe(3);
    const checked = await keyport(['status', '--check'], [UNBLOCKED_PIN]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain('accepted by piv-pin as cy');
  });

  it("`keyport mfa ls` and `keyport device status` ask the session key's PIV PIN, and a wrong one shows the attempts left", async () => {
    const listed = await keyport(['mfa', 'ls'], [UNBLOCKED_PIN]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).toContain('Enter your PIV PIN:');
    expect(listed.stdout).toMatch(/^Name\s+Type/);
    const status = await keyport(['device', 'status'], ['000000', UNBLOCKED_PIN]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toContain('Enter your PIV PIN (2 attempts left):');
    expect(secrets().pin.retries).toBe(3);
  });

  it('a PUK blocked by wrong ones says only a reset helps, and is refused before anything is asked', async () => {
    for (const left of [2, 1]) {
      const wrong = await keyport(['piv', 'unblock'], ['87654321', PIN]);
      expect(wrong.stderr).toContain(`Wrong PUK (${left} ${left === 1 ? 'attempt' : 'attempts'} left)`);
    }
    const blocking = await keyport(['piv', 'unblock'], ['87654321', PIN]);
    expect(blocking.code).toBe(EXIT.locked);
    expect(blocking.stderr).toContain('ERROR: The PUK of your PIV card is blocked');
    expect(blocking.stderr).toContain('ykman piv reset');
    const before = secrets();
    expect(before.puk.retries).toBe(0);
    expect(before.pin).toMatchObject({ paddedHex: padReference(UNBLOCKED_PIN), retries: 3 });

    const refused = await keyport(['piv', 'unblock'], [PUK, PIN]);
    expect(refused.code).toBe(EXIT.locked);
    expect(refused.stderr).not.toContain('Enter the PUK');
    expect(refused.stderr).toContain('ykman piv reset');
    expect(secrets()).toEqual(before);
    // The PIN itself still works: a blocked PUK only ends the way to unblock it.
    const checked = await keyport(['status', '--check'], [UNBLOCKED_PIN]);
    expect(checked.code, checked.stderr).toBe(0);
  });
});
