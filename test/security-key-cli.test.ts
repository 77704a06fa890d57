// Security keys end to end, through real processes: keyport-auth with WebAuthn, the lab's software keys,
// and the keyport CLI as a person runs it (stdin answers its prompts; the test plays the finger).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyportCliPath, repoRoot, runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { startSoftKey, touchingWhile } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

let cluster: LabCluster;
let work: string;
let keyA: SoftKey;
let keyB: SoftKey;
const home = () => join(work, 'home');
const password = 'kim-password-123';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-sk-'));
  cluster = await startLabCluster({
    clusterName: 'keys',
    configYaml: [
      'auth_service:',
      '  public_addr: localhost:0',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn, otp]',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
  });
  // Key A touches itself; key B waits for the test to touch it, and has a PIN (for passwordless).
  keyA = await startSoftKey({
    socketPath: join(work, 'a.sock'),
    statePath: join(work, 'a.json'),
    touch: 'auto:50',
  });
  keyB = await startSoftKey({
    socketPath: join(work, 'b.sock'),
    statePath: join(work, 'b.json'),
    touch: 'manual',
    pin: '4321',
  });
});

afterAll(async () => {
  await keyA?.stop();
  await keyB?.stop();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], input: string[], keys: SoftKey[]): Promise<CliResult> {
  return runKeyport(args, {
    home: home(),
    input,
    env: { KEYPORT_LAB_SECURITY_KEY: keys.map((k) => k.socketPath).join(':') },
    timeoutMs: 30_000,
  });
}

/** Touches key B whenever it asks, while `work` runs. */
const touchingB = <T>(work: () => Promise<T>) => touchingWhile(keyB, work);

describe('security keys through the keyport CLI', () => {
  it('signs up with a security key as the first device', async () => {
    const added = await runAdmin(cluster, ['users', 'add', 'kim', '--roles', 'access', '--logins', 'kim']);
    const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
    const result = await cli(
      [
        'signup',
        '--cluster',
        cluster.address,
        '--token',
        token,
        '--ca-pin',
        cluster.caPin,
        '--device',
        'webauthn',
        '--device-name',
        'key-a',
      ],
      [password],
      [keyA],
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/User "kim" signed up/);
  });

  it('logs in with password + security key', async () => {
    const result = await cli(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'kim',
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
        '--mfa',
        'key',
      ],
      [password],
      [keyA],
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/MFA verified\s+yes/);
  });

  it('adds a second key for passwordless: tap the existing key, then the new one, then its PIN', async () => {
    const result = await touchingB(() =>
      cli(['mfa', 'add', '--name', 'key-b', '--type', 'webauthn', '--passwordless'], ['4321'], [keyA, keyB]),
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('MFA device "key-b" added.');
    const listed = await cli(['mfa', 'ls'], [], []);
    expect(listed.stdout).toMatch(/^key-a\s+WebAuthn\s.*\sno$/m);
    expect(listed.stdout).toMatch(/^key-b\s+WebAuthn\s.*\syes$/m);
  });

  it('logs in passwordless with the key’s PIN, with no user name and no password', async () => {
    await cli(['logout'], [], []);
    const result = await touchingB(() =>
      cli(
        ['login', '--cluster', cluster.address, '--auth', 'passwordless', '--keystore', 'file'],
        ['4321'],
        [keyB],
      ),
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/User\s+kim/);
  });

  it('asks again after a wrong PIN, showing the attempts left', async () => {
    await cli(['logout'], [], []);
    const result = await touchingB(() =>
      cli(
        ['login', '--cluster', cluster.address, '--auth', 'passwordless', '--keystore', 'file'],
        ['0000', '4321'],
        [keyB],
      ),
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/Wrong PIN \(7 attempts left\)/);
    expect(result.stderr).toMatch(/Enter the PIN of your security key \(7 attempts left\):/);
    expect(result.stdout).toMatch(/User\s+kim/);
  });

  it('cancels a tap with Ctrl-C: the key sees CANCEL and the CLI says cancelled', async () => {
    const child = spawn(
      process.execPath,
      [
        keyportCliPath,
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'kim',
        '--password-stdin',
        '--keystore',
        'file',
        '--mfa',
        'key',
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, KEYPORT_HOME: home(), KEYPORT_LAB_SECURITY_KEY: keyB.socketPath },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(`${password}\n`);
    // Key B holds kim's key-b credential and waits for a touch that never comes: Ctrl-C while it waits.
    const cancelled = new Promise((resolve) => keyB.events.once('cancelled', resolve));
    await new Promise((resolve) => keyB.events.once('up-needed', resolve));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    await cancelled;
    expect(stderr).toMatch(/cancelled/i);
    expect(code).toBe(130);
  });

  it('removes a key after a tap on another registered key', async () => {
    const result = await cli(['mfa', 'rm', 'key-b'], [], [keyA]);
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('MFA device "key-b" removed.');
    expect((await cli(['mfa', 'ls'], [], [])).stdout).not.toMatch(/key-b/);
  });
});
