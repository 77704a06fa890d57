// What needs no keychain at all. The tests against a real gnome-keyring are in lab/keyring.test.ts,
// because client/ must not import lab/ (docs/architecture.md import rules), tests included.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyKeychainError } from './keychain-store';
import { KeychainStore, KeyStoreError } from './index';

const savedBusAddress = process.env.DBUS_SESSION_BUS_ADDRESS;
afterEach(() => {
  if (savedBusAddress === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
  else process.env.DBUS_SESSION_BUS_ADDRESS = savedBusAddress;
});

const HEADLESS_MESSAGE =
  'No OS keychain is reachable (Secret Service over D-Bus). Unlock or start your keychain, ' +
  'or use --keystore file on a headless machine.';

describe.runIf(process.platform === 'linux')('KeychainStore without a usable bus', () => {
  it('fails fast with KEYCHAIN_UNAVAILABLE when DBUS_SESSION_BUS_ADDRESS is unset', async () => {
    delete process.env.DBUS_SESSION_BUS_ADDRESS;
    const store = new KeychainStore();
    const failure = await store.get('alice').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KeyStoreError);
    expect(failure).toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
    expect((failure as Error).message).toContain(HEADLESS_MESSAGE);
    await expect(store.put('alice', 'pem')).rejects.toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
    await expect(store.delete('alice')).rejects.toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
    await expect(store.ready()).rejects.toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
  });

  it('reports a bus with nothing listening as KEYCHAIN_UNAVAILABLE, not as a missing key', async () => {
    // In a fresh process: @napi-rs/keyring latches the bus address at its first use in a process.
    const outcomes = await runInFreshProcess(
      `const store = new KeychainStore();
       for (const attempt of [store.get('alice'), store.put('alice', 'pem'), store.delete('alice'), store.ready()]) {
         await attempt.then((value) => console.log(JSON.stringify({ value })),
                            (error) => console.log(JSON.stringify({ code: error.code, message: error.message })));
       }`,
      { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/keyport-test-bus' },
    );
    expect(outcomes).toHaveLength(4);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
      expect(outcome.message).toContain(HEADLESS_MESSAGE);
      expect(outcome.message).toContain('Failed to connect to socket /nonexistent/keyport-test-bus');
    }
  });
});

describe('KeychainStore input checks', () => {
  it('rejects ids it cannot store faithfully, before touching the keychain', async () => {
    await expect(new KeychainStore().put('', 'pem')).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
    await expect(new KeychainStore().get('a\nb')).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
    await expect(new KeychainStore().delete('x'.repeat(201))).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
  });
});

describe('classifyKeychainError', () => {
  // Messages as @napi-rs/keyring 2.1.2 produced them against gnome-keyring (see keychain-store.ts).
  it.each([
    ["Couldn't access platform storage: Secret Service: unlock prompt was dismissed", 'KEYCHAIN_LOCKED'],
    ["Couldn't access platform storage: Secret Service: no result found", 'KEYCHAIN_LOCKED'],
    [
      'Platform failure: DBus error: Failed to connect to socket /run/user/0/bus: No such file',
      'KEYCHAIN_UNAVAILABLE',
    ],
    [
      'Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files',
      'KEYCHAIN_UNAVAILABLE',
    ],
    ['Entry is matched by 2 credentials: [...]', 'KEYSTORE_IO'],
  ])('%s → %s', (message, code) => {
    const classified = classifyKeychainError(Object.assign(new Error(message), { code: 'GenericFailure' }));
    expect(classified.code).toBe(code);
    expect(classified.message).toContain(message);
  });
});

const keystoreModule = fileURLToPath(new URL('./index.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

async function runInFreshProcess(
  body: string,
  env: NodeJS.ProcessEnv,
): Promise<Array<{ value?: unknown; code?: string; message: string }>> {
  const code = `const { KeychainStore } = await import(${JSON.stringify(keystoreModule)});\n${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: '' });
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { value?: unknown; code?: string; message: string });
}
