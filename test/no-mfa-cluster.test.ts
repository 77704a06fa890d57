// A cluster that requires no second factor (second_factor: optional): whether an MFA answer is needed is
// the server's word (MFAAuthenticateChallenge.mfa_required), and the client core follows it everywhere. A
// person signs up with a password alone, signs in without a code, and lists and adds an MFA device without
// being asked to prove one they do not have. Real keyport-auth; the client core in-process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { addDevice, listDevices } from '../client/ceremonies/devices';
import { loginWithPassword } from '../client/ceremonies/login';
import { signup } from '../client/ceremonies/signup';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { KeyportError } from '../proto/errors';
import { connectAsAdmin, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';

let cluster: LabCluster;
let home: string;
const never = (what: string) => async (): Promise<string> => {
  throw new KeyportError('CANCELLED', `${what} was asked for, on a cluster without MFA`);
};

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-no-mfa-'));
  cluster = await startLabCluster({
    clusterName: 'no-mfa',
    configYaml:
      'auth_service:\n  authentication:\n    type: local\n    second_factor: optional\n    webauthn:\n      rp_id: localhost\n',
  });
});

afterAll(async () => {
  await cluster?.stop();
  await rm(home, { recursive: true, force: true });
});

describe('a cluster where a second factor is optional', () => {
  it('signs up, signs in and manages devices without ever asking for a code or a key it does not need', async () => {
    const admin = await connectAsAdmin(cluster);
    const { signupToken } = await admin.admin.createUser({ name: 'nia', roles: ['access'], traits: {} });
    admin.close();
    const profiles = new ProfileStore(home);
    const address = parseClusterAddress(cluster.address);
    await signup({
      profiles,
      address,
      token: signupToken,
      caPin: cluster.caPin,
      prompts: {
        confirmCaPin: async () => false,
        newPassword: async () => 'nia-password-123',
        showTotpEnrollment: async () => {
          throw new KeyportError('CANCELLED', 'an OTP device was offered on a cluster without MFA');
        },
        otpCode: never('an OTP code'),
      },
    });

    const profile = await loginWithPassword({
      profiles,
      address,
      user: 'nia',
      keystore: 'file',
      prompts: {
        confirmCaPin: async () => false,
        password: async () => 'nia-password-123',
        otpCode: never('an OTP code'),
      },
    });
    expect(profile).toMatchObject({ user: 'nia', mfaVerified: false });

    // No device yet: listing and adding one need no proof of an existing one.
    expect(await listDevices(profiles)).toEqual([]);
    let secret = '';
    await addDevice(profiles, {
      name: 'phone',
      type: 'totp',
      prompts: {
        // Asked only for the new device's code, once its secret was shown: never for an existing device.
        otpCode: async () => {
          if (!secret) throw new KeyportError('CANCELLED', 'an existing device was asked for');
          return totpCode(secret, Date.now());
        },
        securityKey: { tap: () => {}, pin: never('a PIN'), newPin: never('a new PIN') },
        showTotpEnrollment: async (totp) => void (secret = totp.secret),
        say: () => {},
      },
    });
    expect((await listDevices(profiles)).map((device) => device.name)).toEqual(['phone']);
  });
});
