// The current profile as the agent's identity: read at every call, none without a session or after it
// expires, one signer per session (a keychain key is read once, not at every request).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../keystore/file-store';
import { createSoftwareSigner } from '../keystore/signer';
import type { SessionSigner } from '../keystore/signer';
import { ProfileStore } from '../profiles';
import type { Profile } from '../profiles';
import { profileIdentities } from './profile-identities';

let home: string;
let profiles: ProfileStore;
let signer: SessionSigner;
let clock: number;

function profile(overrides: Partial<Profile> = {}): Profile {
  return {
    address: '127.0.0.1:3025',
    cluster: 'lab',
    user: 'kim',
    roles: ['access'],
    logins: ['kim'],
    mfaVerified: true,
    validAfterMs: 0,
    expiresMs: 10_000,
    keystore: 'file',
    keyId: 'key-1',
    tlsCertPem: 'certificate 1',
    sshCertificate: 'ssh-ed25519-cert-v01@openssh.com AAAA kim',
    ...overrides,
  };
}

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-agent-profiles-'));
  profiles = new ProfileStore(home);
  signer = await createSoftwareSigner(new FileStore(join(home, 'keys')), 'key-1', 'ed25519');
  clock = 1_000;
});

afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('profileIdentities', () => {
  it('gives nothing while nobody is signed in', async () => {
    const identities = profileIdentities(profiles, { signerFor: () => signer, now: () => clock });
    expect(await identities()).toEqual([]);
  });

  it("gives the current profile's signer, certificate and user@cluster", async () => {
    await profiles.saveProfile(profile());
    const identities = profileIdentities(profiles, { signerFor: () => signer, now: () => clock });
    expect(await identities()).toEqual([
      { signer, certificate: 'ssh-ed25519-cert-v01@openssh.com AAAA kim', comment: 'kim@lab' },
    ]);
  });

  it('gives nothing once the session has expired', async () => {
    await profiles.saveProfile(profile());
    const identities = profileIdentities(profiles, { signerFor: () => signer, now: () => clock });
    clock = 10_000;
    expect(await identities()).toEqual([]);
  });

  it('keeps one signer per session and opens a new one after a relogin', async () => {
    const opened: string[] = [];
    const identities = profileIdentities(profiles, {
      signerFor: (_, session) => {
        opened.push(session.keyId);
        return signer;
      },
      now: () => clock,
    });
    await profiles.saveProfile(profile());
    await identities();
    await identities();
    expect(opened).toEqual(['key-1']);
    await profiles.saveProfile(profile({ keyId: 'key-2', tlsCertPem: 'certificate 2' }));
    await identities();
    expect(opened).toEqual(['key-1', 'key-2']);
  });

  it('closes the signer it opened when the session changes, ends, or the provider closes', async () => {
    const closed: string[] = [];
    const identities = profileIdentities(profiles, {
      signerFor: (_, session) => ({ signer, close: () => void closed.push(session.keyId) }),
      now: () => clock,
    });
    await profiles.saveProfile(profile());
    await identities();
    await profiles.saveProfile(profile({ keyId: 'key-2', tlsCertPem: 'certificate 2' }));
    await identities();
    expect(closed).toEqual(['key-1']);
    await profiles.removeProfile('127.0.0.1:3025');
    expect(await identities()).toEqual([]);
    expect(closed).toEqual(['key-1', 'key-2']);
    await profiles.saveProfile(profile({ keyId: 'key-3', tlsCertPem: 'certificate 3' }));
    await identities();
    await identities.close();
    expect(closed).toEqual(['key-1', 'key-2', 'key-3']);
  });

  it('opens one signer for calls that arrive together', async () => {
    let opened = 0;
    const identities = profileIdentities(profiles, {
      signerFor: () => {
        opened += 1;
        return signer;
      },
      now: () => clock,
    });
    await profiles.saveProfile(profile());
    const answers = await Promise.all([identities(), identities(), identities()]);
    expect(answers.map((answer) => answer.length)).toEqual([1, 1, 1]);
    expect(opened).toBe(1);
  });

  it('follows a logout at the next call', async () => {
    await profiles.saveProfile(profile());
    const identities = profileIdentities(profiles, { signerFor: () => signer, now: () => clock });
    expect(await identities()).toHaveLength(1);
    await profiles.removeProfile('127.0.0.1:3025');
    expect(await identities()).toEqual([]);
  });
});
