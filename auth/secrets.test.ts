import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isSealed, openKeyEncryptionKey, SealedSecretRefused, SecretBox } from './secrets';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyport-secrets-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const box = new SecretBox(Buffer.alloc(32, 7));

describe('SecretBox', () => {
  it('opens what it sealed, under the same context, and seals the same text differently each time', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (text, context) => {
        const sealed = box.seal(text, context);
        expect(isSealed(sealed)).toBe(true);
        expect(box.open(sealed, context)).toBe(text);
      }),
    );
    expect(box.seal('JBSWY3DPEHPK3PXP', 'totp-seed:lee')).not.toBe(
      box.seal('JBSWY3DPEHPK3PXP', 'totp-seed:lee'),
    );
  });

  it('refuses another context, a changed byte, another key and plain text, with a typed error', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'totp-seed:lee');
    const refusal = {
      code: 'INTERNAL',
      message: expect.stringMatching(/does not open with this key-encryption key/),
    };
    expect(() => box.open(sealed, 'totp-seed:kim')).toThrow(expect.objectContaining(refusal));
    const body = Buffer.from(sealed.slice('kp-sealed:v1:'.length), 'base64url');
    for (const at of [0, 12, body.length - 1]) {
      const changed = Buffer.from(body);
      changed[at]! ^= 1;
      expect(() => box.open(`kp-sealed:v1:${changed.toString('base64url')}`, 'totp-seed:lee')).toThrow(
        expect.objectContaining(refusal),
      );
    }
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed, 'totp-seed:lee')).toThrow(
      expect.objectContaining(refusal),
    );
    expect(() => box.open('JBSWY3DPEHPK3PXP', 'totp-seed:lee')).toThrow(expect.objectContaining(refusal));
    expect(() => box.open('kp-sealed:v1:AAAA', 'totp-seed:lee')).toThrow(expect.objectContaining(refusal));
    // One class for all of them, which callers (the CA loader) tell apart from other failures.
    expect(() => box.open(sealed, 'totp-seed:kim')).toThrow(SealedSecretRefused);
  });
});

describe('openKeyEncryptionKey', () => {
  it('creates the key file owner-only on first use and reads the same key after', async () => {
    const path = join(dir, 'data.kek');
    const first = await openKeyEncryptionKey(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')).toHaveLength(32);
    const again = await openKeyEncryptionKey(path);
    expect(again.open(first.seal('seed', 'c'), 'c')).toBe('seed');
  });

  it('refuses a key file others can read, and one that holds no key', async () => {
    const open = join(dir, 'open.kek');
    writeFileSync(open, `${Buffer.alloc(32, 1).toString('base64')}\n`);
    chmodSync(open, 0o644);
    await expect(openKeyEncryptionKey(open)).rejects.toThrow(/0644|permissions|mode/i);
    const garbage = join(dir, 'garbage.kek');
    writeFileSync(garbage, 'not a key\n', { mode: 0o600 });
    await expect(openKeyEncryptionKey(garbage)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
