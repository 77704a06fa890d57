import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import type { Profile } from '../../client/profiles';
import { watchProfiles } from './profile-watcher';
import type { ProfileWatcher } from './profile-watcher';

let home: string;
let watcher: ProfileWatcher | undefined;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-watch-'));
});
afterEach(async () => {
  watcher?.close();
  await rm(home, { recursive: true, force: true });
});

function profile(address: string, user: string): Profile {
  return {
    address,
    cluster: 'lab',
    user,
    roles: ['access'],
    logins: [user],
    mfaVerified: true,
    validAfterMs: 1,
    expiresMs: 2,
    keystore: 'file',
    keyId: 'k',
    tlsCertPem: 'c',
    sshCertificate: 's',
  };
}

describe('watchProfiles', () => {
  it('skips a malformed profile file and still reports the others, including their removal', async () => {
    const store = new ProfileStore(home);
    await mkdir(join(home, 'profiles'), { recursive: true });
    await writeFile(join(home, 'profiles', 'a.json'), JSON.stringify({ address: 'a:1', user: 'x' }));
    await store.saveProfile(profile('b:1', 'bob'));
    const seen: string[] = [];
    watcher = await watchProfiles(store, {
      onChange: (address, p) => seen.push(`${address}=${p?.user ?? 'gone'}`),
    });
    expect(seen).toEqual(['b:1=bob']);
    await store.removeProfile('b:1');
    await watcher.refresh();
    expect(seen).toEqual(['b:1=bob', 'b:1=gone']);
  });

  it('retries a report whose listener threw, and reports each change once', async () => {
    const store = new ProfileStore(home);
    await store.saveProfile(profile('c:1', 'carol'));
    let fail = true;
    const seen: string[] = [];
    watcher = await watchProfiles(store, {
      onChange: (address, p) => {
        if (fail) throw new Error('listener failed');
        seen.push(`${address}=${p?.user ?? 'gone'}`);
      },
    });
    fail = false;
    await watcher.refresh();
    await watcher.refresh();
    expect(seen).toEqual(['c:1=carol']);
  });

  it("reports a session's move to a PIV card (the CLI's relogin), and skips a malformed hardwareKey", async () => {
    const store = new ProfileStore(home);
    await store.saveProfile(profile('d:1', 'dora'));
    const seen: string[] = [];
    watcher = await watchProfiles(store, {
      onChange: (address, p) => seen.push(`${address}=${p?.hardwareKey?.slot ?? 'software'}`),
    });
    const card = {
      slot: '9c',
      policy: 'hardware_key_touch',
      pinPolicy: 'never',
      touchPolicy: 'cached',
    } as const;
    await store.saveProfile({ ...profile('d:1', 'dora'), hardwareKey: card });
    await watcher.refresh();
    expect(seen).toEqual(['d:1=software', 'd:1=9c']);
    await writeFile(
      join(home, 'profiles', 'e_1.json'),
      JSON.stringify({ ...profile('e:1', 'eve'), hardwareKey: { slot: '9c', touchPolicy: 'sometimes' } }),
    );
    await watcher.refresh();
    expect(seen).toEqual(['d:1=software', 'd:1=9c']);
  });
});
