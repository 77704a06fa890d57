// Keyport Connect in the lab: a cluster with security keys and OTP, a person signed up with a lab key
// registered as a passkey (and an OTP device), and the app served by the browser host. Used by `npm start`
// (lab/demo.ts), the end-to-end tests and the benchmarks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totpCode } from '../auth/totp';
import { addDevice } from '../client/ceremonies/devices';
import { loginWithPassword, logout } from '../client/ceremonies/login';
import { signup } from '../client/ceremonies/signup';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import type { SecurityKeyPrompts } from '../client/webauthn';
import { KeyportError } from '../proto/errors';
import { connectAsAdmin } from './cluster';
import type { LabCluster } from './cluster';

/** cluster_auth_preference for the app: keys and OTP, passwordless allowed, WebAuthn on localhost. */
export function connectClusterConfig(publicAddr = 'localhost:0'): string {
  return [
    'auth_service:',
    `  public_addr: ${publicAddr}`,
    '  authentication:',
    '    type: local',
    '    second_factors: [webauthn, otp]',
    '    allow_passwordless: true',
    '    webauthn:',
    '      rp_id: localhost',
    '',
  ].join('\n');
}

export interface KeyPerson {
  user: string;
  password: string;
  /** The OTP device's secret, when one was added. */
  totpSecret?: string;
  keyName: string;
}

/** Security-key prompts answered by a program: no one to tap for (the lab key touches itself), a PIN. */
export function scriptedKeyPrompts(pin: string): SecurityKeyPrompts {
  return { tap: () => {}, pin: async () => pin, newPin: async () => pin };
}

const noOtp = () => Promise.reject(new KeyportError('CANCELLED', 'no OTP device here'));

/**
 * Creates `user` and signs up with the lab key at `keySocket` as a passkey (its PIN is `pin`), then, when
 * `addOtp`, signs in once with password + key in a throwaway home to add an OTP device. The lab key must
 * touch itself (touch 'auto' or 'auto:MS').
 */
export async function signUpWithLabKey(
  cluster: LabCluster,
  options: {
    user: string;
    roles: string[];
    logins?: string[];
    password: string;
    keySocket: string;
    pin: string;
    addOtp?: boolean;
    keyName?: string;
  },
): Promise<KeyPerson> {
  const keyName = options.keyName ?? 'lab key';
  const previousKeys = process.env[LAB_SECURITY_KEY_ENV];
  process.env[LAB_SECURITY_KEY_ENV] = options.keySocket;
  const home = await mkdtemp(join(tmpdir(), 'keyport-setup-'));
  try {
    const admin = await connectAsAdmin(cluster);
    let token: string;
    try {
      token = (
        await admin.admin.createUser({
          name: options.user,
          roles: options.roles,
          traits: { logins: (options.logins ?? [options.user]).join(',') },
        })
      ).signupToken;
    } finally {
      admin.close();
    }
    const profiles = new ProfileStore(home);
    const address = parseClusterAddress(cluster.address);
    const securityKey = scriptedKeyPrompts(options.pin);
    await signup({
      profiles,
      address,
      token,
      caPin: cluster.caPin,
      deviceType: 'webauthn',
      deviceName: keyName,
      passwordless: true,
      prompts: {
        confirmCaPin: async () => false,
        newPassword: async () => options.password,
        showTotpEnrollment: () => Promise.reject(new Error('unexpected OTP enrollment')),
        otpCode: noOtp,
        securityKey,
      },
    });
    let totpSecret: string | undefined;
    if (options.addOtp) {
      await loginWithPassword({
        profiles,
        address,
        user: options.user,
        keystore: 'file',
        mfa: 'key',
        prompts: {
          confirmCaPin: async () => false,
          password: async () => options.password,
          otpCode: noOtp,
          securityKey,
        },
      });
      let secret = '';
      await addDevice(profiles, {
        name: 'otp',
        type: 'totp',
        existing: 'key',
        prompts: {
          securityKey,
          say: () => {},
          showTotpEnrollment: async (enrollment) => void (secret = enrollment.secret),
          otpCode: async () => totpCode(secret, Date.now()),
        },
      });
      totpSecret = secret;
      await logout(profiles);
    }
    return { user: options.user, password: options.password, keyName, ...(totpSecret ? { totpSecret } : {}) };
  } finally {
    if (previousKeys === undefined) delete process.env[LAB_SECURITY_KEY_ENV];
    else process.env[LAB_SECURITY_KEY_ENV] = previousKeys;
    await rm(home, { recursive: true, force: true });
  }
}
