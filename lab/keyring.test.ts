// The lab keyring itself, and the client's KeychainStore against it (a real gnome-keyring). The
// KeychainStore tests live here because client/ may not import lab/, while lab/ may import anything.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSessionKey, KEYCHAIN_SERVICE, KeychainStore, openKeyStore } from '../client/keystore';
import type { KeyStoreError } from '../client/keystore';
import { processIdsWithEnvironment, startLabKeyring } from './keyring';
import type { LabKeyring } from './keyring';

describe('startLabKeyring', () => {
  it('runs an unlocked Secret Service on a private bus, locks it, and stops without leftovers', async () => {
    const lab = await startLabKeyring({ password: 'lab test password' });
    const rootDir = dirname(lab.homeDir);
    try {
      expect(lab.env.DBUS_SESSION_BUS_ADDRESS).toBe(lab.busAddress);
      expect(lab.busAddress).toMatch(/^unix:path=/);
      for (const dir of [lab.env.XDG_DATA_HOME, lab.env.XDG_CONFIG_HOME, lab.env.XDG_RUNTIME_DIR]) {
        expect(dir.startsWith(rootDir)).toBe(true);
      }
      // secret-tool (libsecret) is an independent client that finds the service through the env alone.
      const env = { PATH: process.env.PATH, ...lab.env };
      execFileSync('secret-tool', ['store', '--label=lab check', 'purpose', 'lab-check'], {
        env,
        input: 'hello',
      });
      expect(execFileSync('secret-tool', ['lookup', 'purpose', 'lab-check'], { env, encoding: 'utf8' })).toBe(
        'hello',
      );
      expect(await lab.isLocked()).toBe(false);
      await lab.lock();
      expect(await lab.isLocked()).toBe(true);
    } finally {
      await lab.stop();
    }
    await lab.stop();

    expect(existsSync(rootDir)).toBe(false);
    expect(processIdsWithEnvironment(`XDG_RUNTIME_DIR=${lab.env.XDG_RUNTIME_DIR}\0`)).toEqual([]);
  });

  it('refuses an empty password, with which gnome-keyring creates no login keyring', async () => {
    await expect(startLabKeyring({ password: '' })).rejects.toThrow(/must not be empty/);
  });
});

// One keyring for all of these: @napi-rs/keyring latches the bus address at its first use in a
// process, and a locked lab keyring cannot be unlocked again without a GUI prompt, so locking comes last.
describe('KeychainStore on the lab gnome-keyring', () => {
  let lab: LabKeyring;
  const savedBusAddress = process.env.DBUS_SESSION_BUS_ADDRESS;

  beforeAll(async () => {
    lab = await startLabKeyring();
    // The library reads nothing else from the environment.
    process.env.DBUS_SESSION_BUS_ADDRESS = lab.env.DBUS_SESSION_BUS_ADDRESS;
  });

  afterAll(async () => {
    if (savedBusAddress === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = savedBusAddress;
    await lab?.stop();
  });

  const childEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, ...lab.env });

  it('stores, reads back, replaces and deletes a private key', async () => {
    const store = openKeyStore('keychain', '/nonexistent-keyport-home');
    expect(store.kind).toBe('keychain');
    const { privateKeyPem } = generateSessionKey('ecdsa-p256');

    await store.ready();
    await store.put('alice@round-trip', privateKeyPem);
    expect(await store.get('alice@round-trip')).toBe(privateKeyPem);

    const replacement = generateSessionKey('ed25519').privateKeyPem;
    await store.put('alice@round-trip', replacement);
    expect(await store.get('alice@round-trip')).toBe(replacement);

    expect(await store.delete('alice@round-trip')).toBe(true);
    expect(await store.delete('alice@round-trip')).toBe(false);
    await expect(store.get('alice@round-trip')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
  });

  it('keeps the key in the Secret Service: another process and secret-tool read it back', async () => {
    const { privateKeyPem } = generateSessionKey('ed25519');
    await new KeychainStore().put('bob@other-process', privateKeyPem);

    const child = await runTypeScript(
      `const { KeychainStore } = await import(${JSON.stringify(clientKeystoreModule)});
       process.stdout.write(await new KeychainStore().get('bob@other-process'));`,
      childEnv(),
    );
    expect(child).toEqual({ exitCode: 0, stdout: privateKeyPem, stderr: '' });

    // An ordinary item with plain attributes, so any Secret Service client finds it.
    const viaLibsecret = execFileSync(
      'secret-tool',
      ['lookup', 'service', KEYCHAIN_SERVICE, 'username', 'bob@other-process'],
      { env: childEnv(), encoding: 'utf8' },
    );
    expect(viaLibsecret).toBe(privateKeyPem);
  });

  it('never writes the private key in plaintext under HOME or the runtime dir', async () => {
    const { privateKeyPem } = generateSessionKey('ecdsa-p256');
    const keyringFile = join(lab.env.XDG_DATA_HOME, 'keyrings', 'login.keyring');
    const keyringBefore = readFileSync(keyringFile);
    await new KeychainStore().put('carol@no-plaintext', privateKeyPem);
    // gnome-keyring persists the item at once, encrypted with the keyring password.
    expect(readFileSync(keyringFile).equals(keyringBefore)).toBe(false);
    const der = Buffer.from(privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const base64Lines = privateKeyPem.split('\n').filter((line) => line && !line.startsWith('-----'));

    const files = [...regularFilesUnder(lab.homeDir), ...regularFilesUnder(lab.env.XDG_RUNTIME_DIR)];
    expect(files).toContain(keyringFile);
    for (const file of files) {
      const content = readFileSync(file);
      expect(content.includes(der), `${file} holds the DER key`).toBe(false);
      for (const line of base64Lines)
        expect(content.includes(line), `${file} holds the PEM body`).toBe(false);
    }
  });

  describe('with the login collection locked', () => {
    const store = new KeychainStore();
    const storedKey = generateSessionKey('ed25519').privateKeyPem;

    beforeAll(async () => {
      await store.put('dave@locked', storedKey);
      await lab.lock();
    });

    async function failureOf(operation: Promise<unknown>): Promise<KeyStoreError> {
      return operation.then(
        (value) => {
          throw new Error(`expected a KeyStoreError, got ${JSON.stringify(value)}`);
        },
        (error: KeyStoreError) => error,
      );
    }

    it('reports reading a stored key as KEYCHAIN_LOCKED, not as null or KEY_NOT_FOUND', async () => {
      expect(await lab.isLocked()).toBe(true);
      const failure = await failureOf(store.get('dave@locked'));
      expect(failure.code).toBe('KEYCHAIN_LOCKED');
      expect(failure.message).toMatch(/^The OS keychain is locked\. Unlock it/);
    });

    it('reports reading an id it does not hold as KEYCHAIN_LOCKED too', async () => {
      // The library resolves null here: only asking the collection reveals the lock.
      expect((await failureOf(store.get('nobody@locked'))).code).toBe('KEYCHAIN_LOCKED');
    });

    it('refuses writes and deletes with KEYCHAIN_LOCKED', async () => {
      expect((await failureOf(store.put('erin@locked', storedKey))).code).toBe('KEYCHAIN_LOCKED');
      expect((await failureOf(store.delete('dave@locked'))).code).toBe('KEYCHAIN_LOCKED');
      expect((await failureOf(store.delete('nobody@locked'))).code).toBe('KEYCHAIN_LOCKED');
    });

    it('says it is not ready for a key (KEYCHAIN_LOCKED), writing nothing', async () => {
      expect((await failureOf(store.ready())).code).toBe('KEYCHAIN_LOCKED');
    });
  });
});

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const clientKeystoreModule = fileURLToPath(new URL('../client/keystore/index.ts', import.meta.url));

function regularFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** A fresh Node process running `code` as an ES module, TypeScript imports through tsx. */
async function runTypeScript(
  code: string,
  env: NodeJS.ProcessEnv,
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env,
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
  return { exitCode, stdout, stderr };
}
