// keyport mfa: the signed-in person's own MFA devices (security keys and OTP apps).
import { Option } from 'commander';
import type { Command } from 'commander';
import { MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import { addDevice, listDevices, removeDevice } from '../client/ceremonies/devices';
import type { ProfileStore } from '../client/profiles';
import type { Prompter } from './prompts';
import { securityKeyPrompts } from './security-key-prompts';
import { withRelogin } from './relogin';
import { pivPrompts } from './piv-prompts';

function date(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : '-';
}

export function registerMfaCommands(root: Command, profiles: ProfileStore, prompter: Prompter): void {
  const mfa = root.command('mfa').description('Manage your MFA devices (security keys and OTP apps)');
  const prompts = {
    otpCode: () => prompter.text('Enter an OTP code from a device you already registered:'),
    securityKey: securityKeyPrompts(prompter),
  };
  // A session key on a PIV card asks for its PIN and touch.
  const piv = pivPrompts(prompter);
  const existing = new Option('--mfa <kind>', 'which existing device proves it is you')
    .choices(['auto', 'key', 'otp'])
    .default('auto');

  mfa
    .command('ls')
    .description('List your MFA devices')
    .action(async () => {
      const devices = await withRelogin(profiles, () => listDevices(profiles, { piv }), prompter);
      console.log(
        `${'Name'.padEnd(20)}${'Type'.padEnd(10)}${'Added'.padEnd(22)}${'Last used'.padEnd(22)}Passkey`,
      );
      for (const device of devices) {
        const type = device.type === MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN ? 'WebAuthn' : 'TOTP';
        console.log(
          `${device.name.padEnd(20)}${type.padEnd(10)}${date(device.addedMs).padEnd(22)}${date(device.lastUsedMs).padEnd(22)}${device.passkey ? 'yes' : 'no'}`,
        );
      }
    });

  mfa
    .command('add')
    .description('Add an MFA device: prove an existing one, then register the new one')
    .requiredOption('--name <name>', 'a name for the new device, unique among yours')
    .addOption(
      new Option('--type <type>', 'webauthn (security key) or totp (authenticator app)')
        .choices(['webauthn', 'totp'])
        .default('webauthn'),
    )
    .option('--passwordless', 'register the key for passwordless login (a resident credential with its PIN)')
    .addOption(existing)
    .action(async (options) => {
      const device = await withRelogin(
        profiles,
        () =>
          addDevice(profiles, {
            name: options.name,
            type: options.type,
            passwordless: Boolean(options.passwordless),
            existing: options.mfa,
            piv,
            prompts: {
              ...prompts,
              otpCode: () => prompter.text('Enter an OTP code:'),
              say: (line) => prompter.say(line),
              async showTotpEnrollment(totp) {
                prompter.say('Add this OTP device to your authenticator app (scan or paste the URI):');
                prompter.say(`  ${totp.otpauthUri}`);
                prompter.say(`  secret: ${totp.secret}`);
              },
            },
          }),
        prompter,
      );
      console.log(`MFA device "${device.name}" added.`);
    });

  mfa
    .command('rm <name>')
    .description('Remove one of your MFA devices (after proving an existing one)')
    .addOption(existing)
    .action(async (name: string, options) => {
      await withRelogin(
        profiles,
        () => removeDevice(profiles, { name, existing: options.mfa, prompts, piv }),
        prompter,
      );
      console.log(`MFA device "${name}" removed.`);
    });
}
