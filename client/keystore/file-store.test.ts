import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore, fileNameForId, generateSessionKey, openKeyStore } from './index';

let scratch: string;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'keyport-filestore-'));
});

afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe.runIf(process.platform !== 'win32')('FileStore', () => {
  it('is what openKeyStore("file") gives, under <keyport home>/keys', () => {
    const store = openKeyStore('file', scratch);
    expect(store.kind).toBe('file');
    expect(store).toBeInstanceOf(FileStore);
    expect((store as FileStore).dir).toBe(join(scratch, 'keys'));
  });

  it('writes one 0600 file per id in a 0700 directory, whatever the umask', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    const { privateKeyPem } = generateSessionKey('ed25519');
    const previousUmask = process.umask(0o000);
    try {
      await store.put('alice@example.com', privateKeyPem);
    } finally {
      process.umask(previousUmask);
    }
    expect(modeOf(store.dir)).toBe(0o700);
    expect(readdirSync(store.dir)).toEqual(['alice@example.com.pem']);
    expect(modeOf(store.keyPath('alice@example.com'))).toBe(0o600);
    expect(await store.get('alice@example.com')).toBe(privateKeyPem);
  });

  it('is ready for a key without writing anything, and says so when its folder cannot take one', async () => {
    const missing = new FileStore(join(scratch, 'home', 'keys'));
    await missing.ready();
    expect(readdirSync(scratch)).toEqual([]);
    mkdirSync(join(scratch, 'home'));
    writeFileSync(join(scratch, 'home', 'keys'), 'not a directory');
    await expect(missing.ready()).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
    expect(readdirSync(join(scratch, 'home'))).toEqual(['keys']);
  });

  it('tightens an existing key directory to 0700', async () => {
    const dir = join(scratch, 'keys');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    await new FileStore(dir).put('alice', 'pem');
    expect(modeOf(dir)).toBe(0o700);
  });

  it('replaces a key atomically and leaves no temporary files', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    await store.put('alice', 'first');
    const before = statSync(store.keyPath('alice')).ino;
    await store.put('alice', 'second');
    expect(await store.get('alice')).toBe('second');
    // A new inode: the old file was renamed over, never truncated and rewritten in place.
    expect(statSync(store.keyPath('alice')).ino).not.toBe(before);
    expect(readdirSync(store.dir)).toEqual(['alice.pem']);
  });

  it('refuses to read a key file other users can read, and says how to fix it', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    await store.put('alice', 'secret pem');
    const path = store.keyPath('alice');
    chmodSync(path, 0o644);

    const failure = await store.get('alice').catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'KEYSTORE_IO' });
    expect((failure as Error).message).toContain('mode 0644');
    expect((failure as Error).message).toContain(`chmod 600 '${path}'`);

    chmodSync(path, 0o640);
    await expect(store.get('alice')).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
    chmodSync(path, 0o600);
    expect(await store.get('alice')).toBe('secret pem');
  });

  it('does not follow a symlink planted in place of a key file', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    await store.put('alice', 'pem');
    const elsewhere = join(scratch, 'elsewhere.pem');
    writeFileSync(elsewhere, 'attacker key', { mode: 0o600 });
    rmSync(store.keyPath('alice'));
    symlinkSync(elsewhere, store.keyPath('alice'));
    await expect(store.get('alice')).rejects.toMatchObject({ code: 'KEYSTORE_IO' });
  });

  it('reports a missing key as KEY_NOT_FOUND and deletes idempotently', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    await expect(store.get('nobody')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    await store.put('alice', 'pem');
    expect(await store.delete('alice')).toBe(true);
    expect(await store.delete('alice')).toBe(false);
    await expect(store.get('alice')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
  });

  it('keeps every id inside its directory', async () => {
    const store = new FileStore(join(scratch, 'keys'));
    for (const id of ['../escape', '..', '.hidden', 'a/b', 'C:\\x', 'ünï']) {
      await store.put(id, `pem for ${id}`);
      expect(await store.get(id)).toBe(`pem for ${id}`);
    }
    expect(readdirSync(scratch)).toEqual(['keys']);
    expect(readdirSync(store.dir).sort()).toEqual(
      [
        '%2E.%2Fescape.pem',
        '%2E..pem',
        '%2Ehidden.pem',
        'a%2Fb.pem',
        'C%3A%5Cx.pem',
        '%C3%BCn%C3%AF.pem',
      ].sort(),
    );
    expect(fileNameForId('alice@example.com')).toBe('alice@example.com');
  });
});
