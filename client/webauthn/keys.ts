// The security keys available to this client: the lab keys named by KEYPORT_LAB_SECURITY_KEY (only when
// set, and labelled as lab keys) plus real USB HID keys through node-hid.
import { delimiter } from 'node:path';
import { Fido2Client } from '../hardware/fido/client';
import { CtaphidDevice } from '../hardware/fido/device';
import type { CtaphidDeviceOptions } from '../hardware/fido/device';
import { listFidoHidDevices, NodeHidTransport } from '../hardware/fido/hid-transport';
import { LAB_SECURITY_KEY_ENV, SocketHidTransport } from '../hardware/fido/socket-transport';

export interface SecurityKey {
  /** Shown to the person: "Lab security key (/path/to.sock)", or the HID product name. */
  label: string;
  kind: 'lab' | 'hid';
  client: Fido2Client;
  close(): Promise<void>;
}

export interface OpenKeysOptions {
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  device?: CtaphidDeviceOptions;
  /** Where real HID keys come from; defaults to openHidSecurityKeys. */
  openHid?: (device: CtaphidDeviceOptions) => Promise<SecurityKey[]>;
}

/** Opens one key over the lab socket transport. */
export async function openLabKey(
  socketPath: string,
  device: CtaphidDeviceOptions = {},
): Promise<SecurityKey> {
  const ctaphid = await CtaphidDevice.open(await SocketHidTransport.connect(socketPath), device);
  return {
    label: `Lab security key (${socketPath})`,
    kind: 'lab',
    client: new Fido2Client(ctaphid),
    close: () => ctaphid.close(),
  };
}

/**
 * Real FIDO HID devices (usage page 0xF1D0) through node-hid (hid-transport.ts). Where node-hid cannot
 * load (it is not installed on the machines this is built on) there are none. A device that does not
 * answer INIT is skipped: another program may hold it.
 */
export async function openHidSecurityKeys(device: CtaphidDeviceOptions = {}): Promise<SecurityKey[]> {
  const keys: SecurityKey[] = [];
  for (const hid of await listFidoHidDevices()) {
    try {
      const ctaphid = await CtaphidDevice.open(await NodeHidTransport.open(hid.path), device);
      keys.push({
        label: [hid.manufacturer, hid.product].filter(Boolean).join(' ') || hid.path,
        kind: 'hid',
        client: new Fido2Client(ctaphid),
        close: () => ctaphid.close(),
      });
    } catch {
      // Unusable right now (busy, permissions, pulled out): the others still work.
    }
  }
  return keys;
}

/**
 * Every available key, each with an open CTAPHID channel. KEYPORT_LAB_SECURITY_KEY may name several lab
 * keys, separated like PATH. A lab key that is set but unreachable is an
 * error (it was asked for explicitly); the caller closes the keys (closeKeys).
 */
export async function openKeys(options: OpenKeysOptions = {}): Promise<SecurityKey[]> {
  const env = options.env ?? process.env;
  const keys: SecurityKey[] = [];
  // Several lab keys may be plugged in at once: socket paths separated by the path delimiter (':').
  const labPaths = (env[LAB_SECURITY_KEY_ENV] ?? '').split(delimiter).filter(Boolean);
  try {
    for (const labPath of labPaths) keys.push(await openLabKey(labPath, options.device));
    keys.push(...(await (options.openHid ?? openHidSecurityKeys)(options.device ?? {})));
  } catch (error) {
    await closeKeys(keys);
    throw error;
  }
  return keys;
}

export async function closeKeys(keys: readonly SecurityKey[]): Promise<void> {
  await Promise.all(keys.map((k) => k.close().catch(() => undefined)));
}
