// A policy raised after the login (issue 10): the person signed in with a software key while no hardware key
// was required; an admin raises their role to hardware_key_touch; their next command is refused with
// PRIVATE_KEY_POLICY_NOT_MET and relogs in by itself with the lab PIV card on a real pcscd (the seed's two
// lines, the password asked again, the key made in 9c with its attestation), then runs once more. A failed
// or cancelled relogin, or a touch refused at the new key's first signature, leaves the old profile as it
// was and exits with the code for its error.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import { RELOGIN_NOTICE } from '../client/ceremonies/hardware-key';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { EXIT } from '../cli/exit-codes';
import { withRelogin } from '../cli/relogin';
import type { Prompter } from '../cli/prompts';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import { hardwareKeyClusterYaml, repoRoot, runKeyport, startLabCluster } from '../lab/cluster';
import { folderSnapshot } from '../lab/folder-snapshot';
import {
  createHardwareKeyUsers,
  hardwareKeyUserPassword,
  raiseHardwareKeyPolicy,
} from '../lab/hardware-key-users';
import type { CliResult, LabCluster } from '../lab/cluster';

const USER = 'ivy';
const PASSWORD = hardwareKeyUserPassword(USER);
const TWO_LINES = `Unmet private key policy "hardware_key_touch".\n${RELOGIN_NOTICE}\n`;

const silent: Prompter = {
  secret: () => Promise.reject(new Error('nothing may be asked')),
  text: () => Promise.reject(new Error('nothing may be asked')),
  confirm: () => Promise.reject(new Error('nothing may be asked')),
  say: () => {},
};

describe('withRelogin', () => {
  it('runs the action once and hands any other error on as it is', async () => {
    const profiles = new ProfileStore(join(tmpdir(), 'keyport-no-home'));
    let runs = 0;
    await expect(withRelogin(profiles, async () => ++runs, silent)).resolves.toBe(1);
    const denied = new KeyportError('ACCESS_DENIED', 'no');
    await expect(
      withRelogin(
        profiles,
        () => {
          runs++;
          return Promise.reject(denied);
        },
        silent,
      ),
    ).rejects.toBe(denied);
    expect(runs).toBe(2);
    // Refused for the key policy with nobody signed in: the refusal as it is, nothing asked.
    const refused = new KeyportError(
      'PRIVATE_KEY_POLICY_NOT_MET',
      'Unmet private key policy "hardware_key".',
      {
        privateKeyPolicy: 'hardware_key',
      },
    );
    await expect(withRelogin(profiles, () => Promise.reject(refused), silent)).rejects.toBe(refused);
  });
});

describe('a command refused for a key policy raised after the login relogs in with the card', () => {
  let card: LabPivCard;
  let cluster: LabCluster;
  let work: string;
  let home: string;

  beforeAll(async () => {
    card = await startLabPivCard({ touch: 'auto' });
    work = await mkdtemp(join(tmpdir(), 'keyport-key-policy-relogin-'));
    home = join(work, USER);
    cluster = await startLabCluster({
      clusterName: 'policy-raised',
      configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
    });
    await createHardwareKeyUsers(cluster, { [USER]: 'none' });
    // Signed in while no hardware key is required: a software key in the file keystore.
    const login = await runKeyport(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        USER,
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { home, input: [PASSWORD], env: { ...card.env } },
    );
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).not.toContain('Unmet private key policy');
    expect((await profileOf()).hardwareKey).toBeUndefined();
    expectOk(await status());
    // The admin raises the role: the session's key no longer meets it.
    await raiseHardwareKeyPolicy(cluster, 'hardware_key_touch');
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await card?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function status(answers: string[] = []) {
    return runKeyport(['status', '--check'], { home, input: answers, env: { ...card.env } });
  }

  async function profileOf(): Promise<Profile> {
    return (await new ProfileStore(home).getProfile()) as Profile;
  }

  /** Every file in KEYPORT_HOME with its contents. */
  const homeFiles = () => folderSnapshot(home);

  function slotKey(slot: string) {
    const state = JSON.parse(readFileSync(card.statePath, 'utf8')) as {
      slots: Record<string, { privateKeyPem: string; pinPolicy: number; touchPolicy: number }>;
    };
    const key = state.slots[slot];
    return key && { publicKey: createPublicKey(createPrivateKey(key.privateKeyPem)), touch: key.touchPolicy };
  }

  function expectOk(result: CliResult): void {
    expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
  }

  it('a failed relogin (a wrong password) leaves the old profile and key as they were and exits with its code', async () => {
    const before = homeFiles();
    const result = await status(['not-the-password-123']);
    expect(result.code, result.stderr).toBe(EXIT.accessDenied);
    expect(result.stderr).toContain(TWO_LINES);
    expect(result.stderr.split(RELOGIN_NOTICE)).toHaveLength(2);
    expect(result.stderr).toContain(`Enter password for Keyport user ${USER}:`);
    expect(result.stdout).not.toContain('accepted by');
    expect(homeFiles()).toEqual(before);
    expect(Object.keys(before).some((path) => path.startsWith(join(home, 'keys')))).toBe(true);
  });

  it('a relogin cancelled with Ctrl-C fails with CANCELLED (exit 130) and leaves the old profile as it was', async () => {
    const before = homeFiles();
    const result = await interruptedAt(`Enter password for Keyport user ${USER}:`, home, { ...card.env });
    expect(result.code, result.stderr).toBe(EXIT.cancelled);
    expect(result.stderr).toContain(TWO_LINES);
    expect(result.stderr).toContain('ERROR: Relogin cancelled');
    expect(homeFiles()).toEqual(before);
  });

  it("a touch refused at the new key's first signature leaves KEYPORT_HOME byte for byte as it was", async () => {
    // Generating and attesting need no touch: the relogin's first touch is the new session's first call.
    const before = homeFiles();
    await card.setTouchMode('denied');
    let result: CliResult;
    try {
      result = await status([PASSWORD]);
    } finally {
      await card.setTouchMode('auto');
    }
    expect(result.code, result.stderr).toBe(EXIT.accessDenied);
    expect(result.stderr).toContain(TWO_LINES);
    expect(result.stderr).toMatch(/not touched in time/);
    expect(result.stdout).not.toContain('accepted by');
    // The old profile and its software key are kept; no staging folder is left; the card keeps its key.
    expect(homeFiles()).toEqual(before);
    expect(Object.keys(before).some((path) => path.startsWith(join(home, 'keys')))).toBe(true);
    expect(readdirSync(home).filter((name) => name.startsWith('.relogin-'))).toEqual([]);
    expect((await profileOf()).hardwareKey).toBeUndefined();
    expect(slotKey('9c')).toBeDefined();
  });

  it("`keyport status --check` says the seed's two lines, relogs in with the card, and is accepted", async () => {
    let touches = 0;
    const count = () => touches++;
    card.events.on('touch-needed', count);
    let result: CliResult;
    try {
      result = await status([PASSWORD]);
    } finally {
      card.events.off('touch-needed', count);
    }
    expectOk(result);
    expect(result.stderr).toContain(TWO_LINES);
    // Said once: the login does not say them again.
    expect(result.stderr.split(RELOGIN_NOTICE)).toHaveLength(2);
    expect(result.stdout).toContain(`accepted by policy-raised as ${USER}`);
    expect(touches).toBeGreaterThanOrEqual(1);

    // The new profile carries the card's key; no private key is left in KEYPORT_HOME.
    const profile = await profileOf();
    expect(profile).toMatchObject({
      user: USER,
      hardwareKey: { slot: '9c', serial: card.serial, policy: 'hardware_key_touch', touchPolicy: 'cached' },
    });
    expect(new X509Certificate(profile.tlsCertPem).publicKey.equals(slotKey('9c')!.publicKey)).toBe(true);
    const files = homeFiles();
    for (const [path, content] of Object.entries(files)) {
      expect(path).not.toContain(`${join(home, 'keys')}/`);
      expect(content, `${path} holds a private key`).not.toMatch(/PRIVATE KEY|"d":/);
    }

    // The next commands go through the card at once.
    const again = await status();
    expectOk(again);
    expect(again.stderr).not.toContain('Unmet private key policy');
    const devices = await runKeyport(['mfa', 'ls'], { home, env: { ...card.env } });
    expectOk(devices);
    expect(devices.stderr).not.toContain('Unmet private key policy');
  });
});

/** `keyport status --check` with stdin held open, sent SIGINT (Ctrl-C) once `question` is asked. */
function interruptedAt(question: string, home: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/keyport.mjs'), 'status', '--check'], {
      cwd: repoRoot,
      env: { ...process.env, KEYPORT_HOME: home, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyport status --check was not interrupted\nstderr: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!sent && stderr.includes(question)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, stdout, stderr });
    });
  });
}
