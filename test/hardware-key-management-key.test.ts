// A PIV card whose management key is not the factory one (seed "Hardware Key Support", Troubleshooting and
// "Custom Key"): `keyport login` cannot generate a key there, and says the seed's error and its fix before
// anything on the card or in KEYPORT_HOME changes; a key the person generated themselves with their
// management key (no certificate, as ykman leaves it) is then used when its policies meet the role's, and
// one that falls short gets the same error. The lab card on a real pcscd, driven by CLI processes.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { EXIT } from '../cli/exit-codes';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import { hardwareKeyClusterYaml, repoRoot, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';

const MANAGEMENT_KEY_HEX = '0f'.repeat(24);
const SEED_ERROR =
  'authenticating with management key: auth challenge: smart card error 6982: security status not satisfied';

describe('a PIV card with another management key than the factory one', () => {
  let card: LabPivCard;
  let cluster: LabCluster;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-piv-mgm-'));
    card = await startLabPivCard({ touch: 'auto', managementKeyHex: MANAGEMENT_KEY_HEX });
    cluster = await startLabCluster({
      clusterName: 'piv-mgm',
      configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
    });
    await createHardwareKeyUsers(cluster, { mo: 'hardware_key', mt: 'hardware_key_touch' });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await card?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const homeOf = (user: string) => join(work, user);
  const cardState = () => readFileSync(card.statePath, 'utf8');

  function login(user: string): Promise<CliResult> {
    return runKeyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        user,
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { home: homeOf(user), input: [hardwareKeyUserPassword(user)], env: { ...card.env } },
    );
  }

  /** What `ykman piv keys generate -m KEY -a ECCP256 SLOT --touch-policy … --pin-policy …` does. */
  async function generateOwnKey(slot: number, touch: 'never' | 'cached'): Promise<void> {
    const result = await runNode(
      `import { openPivSession } from './client/hardware/piv/session.ts';
       import { managementKey } from './client/hardware/piv/management-key.ts';
       const session = await openPivSession({
         managementKey: managementKey('aes192', Buffer.from('${MANAGEMENT_KEY_HEX}', 'hex')),
       });
       await session.generate(${slot}, { pin: 'never', touch: '${touch}' });
       await session.close();`,
      card.env,
    );
    expect(result.code, result.stderr).toBe(0);
  }

  function slotKey(slot: string) {
    const state = JSON.parse(cardState()) as { slots: Record<string, { privateKeyPem: string }> };
    const key = state.slots[slot];
    return key && createPublicKey(createPrivateKey(key.privateKeyPem));
  }

  function expectNothingStored(user: string): void {
    const home = homeOf(user);
    // The file keystore makes its folder at its first write: no software key was ever written.
    expect(existsSync(join(home, 'keys'))).toBe(false);
    expect(existsSync(join(home, 'profiles')) ? readdirSync(join(home, 'profiles')) : []).toEqual([]);
  }

  it("says the seed's error and its fix, and changes nothing on the card or in KEYPORT_HOME", async () => {
    const before = cardState();
    const refused = await login('mo');
    expect(refused.code, refused.stderr).toBe(EXIT.accessDenied);
    expect(refused.stderr).toContain(`Unmet private key policy "hardware_key".`);
    expect(refused.stderr).toContain(`ERROR: ${SEED_ERROR}`);
    expect(refused.stderr).toContain('ykman piv reset');
    expect(refused.stderr).toContain('ykman piv keys generate -a ECCP256');
    expect(cardState()).toBe(before);
    expectNothingStored('mo');
    expect(await new ProfileStore(homeOf('mo')).getProfile()).toBeUndefined();
  });

  it('uses a key the person generated in the slot with their management key, and leaves it unmarked', async () => {
    await generateOwnKey(0x9a, 'never');
    const own = slotKey('9a')!;
    const objectsBefore = JSON.parse(cardState()).objects;
    const result = await login('mo');
    expect(result.code, result.stderr).toBe(0);
    const profile = (await new ProfileStore(homeOf('mo')).getProfile())!;
    expect(profile.hardwareKey).toMatchObject({ slot: '9a', policy: 'hardware_key' });
    expect(new X509Certificate(profile.tlsCertPem).publicKey.equals(own)).toBe(true);
    expect(JSON.parse(cardState()).objects).toEqual(objectsBefore);
    expect(existsSync(join(homeOf('mo'), 'keys'))).toBe(false);
    const checked = await runKeyport(['status', '--check'], { home: homeOf('mo'), env: { ...card.env } });
    expect(checked.code, checked.stderr).toBe(0);
  });

  it("refuses the person's own key when its policies fall short, with the seed's fix; one that meets them is used", async () => {
    await generateOwnKey(0x9c, 'never');
    const before = cardState();
    const refused = await login('mt');
    expect(refused.code, refused.stderr).toBe(EXIT.accessDenied);
    expect(refused.stderr).toContain(SEED_ERROR);
    expect(refused.stderr).toContain('--touch-policy=<never|cached|always>');
    expect(cardState()).toBe(before);
    expectNothingStored('mt');

    await generateOwnKey(0x9c, 'cached');
    const accepted = await login('mt');
    expect(accepted.code, accepted.stderr).toBe(0);
    expect((await new ProfileStore(homeOf('mt')).getProfile())!.hardwareKey).toMatchObject({
      slot: '9c',
      policy: 'hardware_key_touch',
      touchPolicy: 'cached',
    });
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
