// Device trust from the terminal, with the seed's shapes:
//   keyport device asset-tag | enroll --token T | enroll --current-device | status
//   keyport admin devices add --os linux --asset-tag TAG | ls | rm TAG|ID | enroll --asset-tag TAG | lock | unlock
import { Option } from 'commander';
import type { Command } from 'commander';
import type { CreateDeviceEnrollTokenRequest, Device } from '../proto/gen/keyport/v1/device';
import type { AdminMfaApi } from '../client/api';
import { adminActionFor } from '../client/ceremonies/admin-action';
import { deviceAssetTag } from '../client/device-trust/asset-tag';
import { enrollThisDevice, thisDeviceStatus } from '../client/device-trust/enroll';
import type { ProfileStore } from '../client/profiles';
import { notSignedIn } from '../client/session';
import { KeyportError } from '../proto/errors';
import { parseDurationSeconds } from './format';
import type { AdminWork } from './admin';
import { adminMfaPrompts } from './admin-mfa';
import type { Prompter } from './prompts';
import { withRelogin } from './relogin';
import { pivPrompts } from './piv-prompts';

/** How the seed writes an OS: macOS, Windows, Linux. */
export function osLabel(os: string): string {
  return { macos: 'macOS', windows: 'Windows', linux: 'Linux' }[os] ?? os;
}

function enrollStatusLabel(device: Device): string {
  if (device.locked) return 'locked';
  return device.enrollStatus === 'enrolled' ? 'enrolled' : 'not enrolled';
}

export function registerDeviceCommands(root: Command, profiles: ProfileStore, prompter: Prompter): void {
  const device = root.command('device').description("This device's trust: asset tag, enrollment, status");

  device
    .command('asset-tag')
    .description("Print this device's asset tag (DMI asset tag, product serial or board serial)")
    .action(() => {
      console.log(deviceAssetTag());
    });

  device
    .command('enroll')
    .description("Enroll this device's TPM as a trusted device of the cluster")
    .option('--token <token>', 'the enrollment token from `keyport admin devices enroll`')
    .option('--current-device', 'register and enroll this device in one step (device admins)')
    .action(async (options) => {
      if (Boolean(options.token) === Boolean(options.currentDevice)) {
        throw new KeyportError('INVALID_ARGUMENT', 'Give either --token or --current-device.', {
          fieldPath: 'token',
        });
      }
      const enrolled = await withRelogin(
        profiles,
        async () => {
          const profile = await profiles.getProfile();
          if (!profile) throw notSignedIn('run `keyport login` first, then enroll');
          return enrollThisDevice(profiles, profile, {
            ...(options.token ? { token: options.token as string } : {}),
            // Self-enrollment registers a device: MFA for admin actions asks its touch.
            adminMfa: { prompts: adminMfaPrompts(prompter) },
            piv: pivPrompts(prompter),
            onProgress: (step) => {
              if (step === 'reading-tpm') console.error('Reading the TPM…');
            },
          });
        },
        prompter,
      );
      console.log(`Device "${enrolled.assetTag}"/${osLabel(enrolled.osType)} enrolled`);
      console.log('Sign in again (`keyport login`) for certificates that carry this device.');
    });

  device
    .command('status')
    .description('What the cluster knows of this device, and whether this session carries it')
    .action(async () => {
      const status = await withRelogin(
        profiles,
        async () => {
          const profile = await profiles.getProfile();
          if (!profile) throw notSignedIn();
          return thisDeviceStatus(profiles, profile, { piv: pivPrompts(prompter) });
        },
        prompter,
      );
      const states: Record<string, string> = {
        not_registered: 'not registered',
        registered: 'registered, not enrolled',
        enrolled: 'enrolled (sign in again for a trusted session)',
        other_tpm: 'enrolled with another TPM: ask an admin to remove the device and register it again',
        locked: 'locked by an admin',
      };
      const state = status.trustedInSession
        ? 'trusted in this session'
        : (states[status.state] ?? status.state);
      const rows: [string, string][] = [
        ['Asset tag', status.assetTag || '-'],
        ['OS', osLabel(status.osType)],
        ['Status', state],
        ['Device trust', status.mode],
        ['Device ID', status.device?.id || '-'],
        ['Owner', status.device?.owner || '-'],
        ['TPM', status.tpmProblem ?? 'ready'],
      ];
      for (const [label, value] of rows) console.log(`${label.padEnd(14)}${value}`);
    });
}

export function registerDeviceAdminCommands(
  admin: Command,
  withApi: (work: AdminWork) => Promise<void>,
): void {
  const devices = admin.command('devices').description('Manage the trusted-device inventory');

  devices
    .command('add')
    .description('Register a device in the inventory')
    .addOption(
      new Option('--os <os>', 'operating system')
        .choices(['linux', 'macos', 'windows'])
        .makeOptionMandatory(),
    )
    .requiredOption('--asset-tag <tag>', 'the device serial number (`keyport device asset-tag` on it)')
    .option('--enroll', 'also create an enrollment token')
    .action((options) =>
      withApi(async (_api, writes) => {
        const add = { osType: options.os as string, assetTag: options.assetTag as string };
        // With --enroll, two writes and one touch: the token names the device by the asset tag just added,
        // so both requests are known before the first is sent (MFA for admin actions binds each).
        const token = { device: add.assetTag, ttlSeconds: 0 };
        const api = await writes([
          adminActionFor('devices', 'addDevice', add),
          ...(options.enroll ? [adminActionFor('devices', 'createDeviceEnrollToken', token)] : []),
        ]);
        const added = await api.devices.addDevice(add);
        console.log(`Device ${added.assetTag}/${added.osType} added to the inventory`);
        if (options.enroll) await printToken(api, token, added.assetTag);
      }),
    );

  devices
    .command('ls')
    .description('List the devices')
    .action(() =>
      withApi(async (api) => {
        const { devices: rows } = await api.devices.listDevices({});
        const table = [
          ['Asset Tag', 'OS', 'Source', 'Enroll Status', 'Owner', 'Device ID'],
          ...rows.map((d) => [
            d.assetTag,
            osLabel(d.osType),
            d.source === 'manual' ? '' : d.source,
            enrollStatusLabel(d),
            d.owner,
            d.id,
          ]),
        ];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        const line = (row: string[]) =>
          row
            .map((cell, i) => cell.padEnd(widths[i]!))
            .join(' ')
            .trimEnd();
        console.log(line(table[0]!));
        console.log(widths.map((w) => '-'.repeat(w)).join(' '));
        for (const row of table.slice(1)) console.log(line(row));
      }),
    );

  devices
    .command('rm <device>')
    .description('Remove a device (asset tag or id); its credential stops working at once')
    .action((ref: string) =>
      withApi(async (_api, writes) => {
        const request = { device: ref };
        const api = await writes([adminActionFor('devices', 'deleteDevice', request)]);
        await api.devices.deleteDevice(request);
        console.log(`Device "${ref}" removed`);
      }),
    );

  devices
    .command('enroll')
    .description('Create a single-use enrollment token for a registered device')
    .option('--asset-tag <tag>', 'the device, by asset tag')
    .option('--device-id <id>', 'the device, by id')
    .option('--ttl <duration>', 'how long the token lasts (default 30m, at most 24h)')
    .action((options) =>
      withApi(async (_api, writes) => {
        const ref = options.assetTag ?? options.deviceId;
        if (!ref) throw new KeyportError('INVALID_ARGUMENT', 'Give --asset-tag or --device-id.');
        const ttl = options.ttl ? parseDurationSeconds(options.ttl, '--ttl') : 0;
        const request = { device: ref as string, ttlSeconds: ttl };
        await printToken(
          await writes([adminActionFor('devices', 'createDeviceEnrollToken', request)]),
          request,
          ref,
        );
      }),
    );

  devices
    .command('lock <device>')
    .description('Lock a device: its credential stops working until unlocked')
    .option('--reason <text>', 'why, for the audit log')
    .action((ref: string, options) =>
      withApi(async (_api, writes) => {
        const request = { device: ref, reason: (options.reason as string | undefined) ?? '' };
        const api = await writes([adminActionFor('devices', 'lockDevice', request)]);
        const device = await api.devices.lockDevice(request);
        console.log(`Device "${device.assetTag}" locked`);
      }),
    );

  devices
    .command('unlock <device>')
    .description('Unlock a device')
    .action((ref: string) =>
      withApi(async (_api, writes) => {
        const request = { device: ref };
        const api = await writes([adminActionFor('devices', 'unlockDevice', request)]);
        const device = await api.devices.unlockDevice(request);
        console.log(`Device "${device.assetTag}" unlocked`);
      }),
    );
}

async function printToken(
  api: AdminMfaApi,
  request: CreateDeviceEnrollTokenRequest,
  label: string,
): Promise<void> {
  const created = await api.devices.createDeviceEnrollToken(request);
  const tag = created.device?.assetTag ?? label;
  console.log(`Run the command below on device "${tag}" to enroll it:`);
  console.log(`keyport device enroll --token=${created.token}`);
}
