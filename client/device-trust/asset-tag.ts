// This device's asset tag and OS, as the cluster's inventory names them. On Linux the asset tag is the first
// real value among the DMI chassis asset tag, the product serial and the board serial (as tsh does);
// KEYPORT_DEVICE_ASSET_TAG overrides it (the lab, and machines whose firmware fills in nothing).
import { readFileSync } from 'node:fs';
import { KeyportError } from '../../proto/errors';

const DMI_FILES = [
  '/sys/class/dmi/id/chassis_asset_tag',
  '/sys/class/dmi/id/product_serial',
  '/sys/class/dmi/id/board_serial',
];

/** Values firmware writes when it has nothing to say. */
const PLACEHOLDERS = new Set(
  [
    '',
    'none',
    'default string',
    'not specified',
    'not applicable',
    'to be filled by o.e.m.',
    'system serial number',
    'chassis serial number',
    'no asset tag',
    'asset-1234567890',
    '0',
    '0123456789',
  ].map((v) => v.toLowerCase()),
);

export function isRealAssetTag(value: string): boolean {
  const trimmed = value.trim();
  return !PLACEHOLDERS.has(trimmed.toLowerCase()) && /^[\x21-\x7e]{1,64}$/.test(trimmed);
}

export function deviceAssetTag(
  env: NodeJS.ProcessEnv = process.env,
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): string {
  const override = env.KEYPORT_DEVICE_ASSET_TAG?.trim();
  if (override) {
    if (!isRealAssetTag(override)) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        'KEYPORT_DEVICE_ASSET_TAG must be 1 to 64 printable characters without spaces.',
      );
    }
    return override;
  }
  for (const file of DMI_FILES) {
    let value: string;
    try {
      value = read(file);
    } catch {
      continue; // missing, or readable by root only (product_serial often is)
    }
    if (isRealAssetTag(value)) return value.trim();
  }
  throw new KeyportError(
    'PRECONDITION_FAILED',
    'This machine reports no asset tag or serial number (DMI); set KEYPORT_DEVICE_ASSET_TAG, or run as a user who can read /sys/class/dmi/id/product_serial.',
  );
}

export function deviceOsType(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') return 'macos';
  if (platform === 'win32') return 'windows';
  return 'linux';
}
