// The PIV card going away under a session (issue 10): `keyport status --check` for a hardware_key_touch
// session whose call waits for the card's touch, while the card is pulled (the command says to reinsert it,
// waits, and the call goes through once the same card is back) and while pcscd restarts (the signature runs
// again on a new PC/SC context). A real keyport-auth, the lab card on a real pcscd, `keyport` processes.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REINSERT_YOUR_CARD, TAP_YOUR_YUBIKEY } from '../client/hardware/piv/signer';
import { ProfileStore } from '../client/profiles';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import { hardwareKeyClusterYaml, repoRoot, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';

/** A `keyport` process whose stderr the test can wait on while it runs. */
function startKeyport(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/keyport.mjs'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const waiter of waiters.splice(0)) waiter();
  });
  child.stdin.end();
  const done = new Promise<CliResult>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return {
    done,
    /** Resolves once stderr holds `text`; rejects if the process ends first. */
    async said(text: string): Promise<void> {
      while (!stderr.includes(text)) {
        const next = new Promise<void>((resolve) => waiters.push(resolve));
        const ended = await Promise.race([next.then(() => false), done.then(() => true)]);
        if (ended && !stderr.includes(text))
          throw new Error(`keyport ended without saying "${text}"\n${stderr}`);
      }
    },
  };
}

describe('a hardware-key session whose card goes away while a call waits for it', () => {
  let card: LabPivCard;
  let cluster: LabCluster;
  let clock: LabClock;
  let work: string;
  const home = () => join(work, 'ben');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-piv-faults-'));
    clock = createLabClock();
    card = await startLabPivCard({ touch: 'auto', env: clock.env });
    cluster = await startLabCluster({
      clusterName: 'piv-faults',
      configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
    });
    await createHardwareKeyUsers(cluster, { ben: 'hardware_key_touch' });
    const login = await runKeyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'ben',
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { home: home(), input: [hardwareKeyUserPassword('ben')], env: { ...card.env } },
    );
    expect(login.code, login.stderr).toBe(0);
    await card.setTouchMode('manual');
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await card?.stop();
    clock?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `keyport status --check`, its touch cache on the card long gone (15 s on the lab clock). */
  function check() {
    clock.advance(16_000);
    return startKeyport(['status', '--check'], { KEYPORT_HOME: home(), ...card.env });
  }

  it('says to reinsert a card pulled while the call waits for its touch, and goes through once it is back', async () => {
    const profile = await new ProfileStore(home()).getProfile();
    const running = check();
    await card.nextTouchRequest();
    await running.said(TAP_YOUR_YUBIKEY);
    await card.remove();
    await running.said(REINSERT_YOUR_CARD);
    await card.insert();
    const result = await card.touchingWhile(() => running.done);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('accepted by piv-faults as ben');
    expect(result.stderr.split(REINSERT_YOUR_CARD)).toHaveLength(2);
    expect(await new ProfileStore(home()).getProfile()).toEqual(profile);
  });

  it('runs the signature again on a new pcscd when pcscd restarts while the call waits for its touch', async () => {
    const running = check();
    await card.nextTouchRequest();
    await card.restartPcscd();
    const result = await card.touchingWhile(() => running.done);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('accepted by piv-faults as ben');
    expect(result.stderr).not.toContain(REINSERT_YOUR_CARD);
  });

  it('a card pulled between two commands: the next one, with the card back, goes through', async () => {
    await card.remove();
    await card.insert();
    const result = await card.touchingWhile(() => check().done);
    expect(result.code, result.stderr).toBe(0);
  });
});
