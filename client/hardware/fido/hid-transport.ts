// Real security keys: CTAPHID reports over USB HID through node-hid (hidraw on Linux). Each write carries
// a leading report-ID byte 0 (FIDO devices use unnumbered reports), each read returns one 64-byte report.
// Devices are found by the FIDO usage page 0xF1D0 (CTAP 2.1 §11.2.8.1), never by vendor lists, and are
// watched by polling so keys plugged in or pulled out show up within a second.
import { CtaphidError, REPORT_SIZE } from './ctaphid';
import type { HidTransport } from './device';

export const FIDO_USAGE_PAGE = 0xf1d0;
export const FIDO_USAGE_CTAPHID = 0x01;

export interface FidoHidDevice {
  path: string;
  vendorId: number;
  productId: number;
  product: string;
  manufacturer: string;
  serialNumber: string;
}

/** node-hid's surface that this module uses, so it can be typed without loading the native module. */
interface HidApi {
  devicesAsync(): Promise<
    {
      path?: string;
      vendorId: number;
      productId: number;
      product?: string;
      manufacturer?: string;
      serialNumber?: string;
      usagePage?: number;
      usage?: number;
    }[]
  >;
  HIDAsync: {
    open(
      path: string,
      options?: { nonExclusive?: boolean },
    ): Promise<{
      read(timeoutMs?: number): Promise<Buffer | undefined>;
      write(values: number[] | Buffer): Promise<number>;
      close(): Promise<void>;
    }>;
  };
}

let hidApi: Promise<HidApi | undefined> | undefined;

/**
 * node-hid, loaded on first use: a machine without libusb/libudev (or without node-hid's prebuilt binary
 * for its platform) simply has no HID keys, and the lab key still works.
 */
function loadHid(): Promise<HidApi | undefined> {
  hidApi ??= import('node-hid').then(
    (module) => (module.default ?? module) as unknown as HidApi,
    () => undefined,
  );
  return hidApi;
}

/** Pure: which of the HID devices node-hid lists are FIDO security keys. */
export function selectFidoDevices(devices: Awaited<ReturnType<HidApi['devicesAsync']>>): FidoHidDevice[] {
  const seen = new Set<string>();
  const keys: FidoHidDevice[] = [];
  for (const device of devices) {
    if (device.usagePage !== FIDO_USAGE_PAGE || device.usage !== FIDO_USAGE_CTAPHID || !device.path) continue;
    if (seen.has(device.path)) continue;
    seen.add(device.path);
    keys.push({
      path: device.path,
      vendorId: device.vendorId,
      productId: device.productId,
      product: device.product ?? 'Security key',
      manufacturer: device.manufacturer ?? '',
      serialNumber: device.serialNumber ?? '',
    });
  }
  return keys;
}

export async function listFidoHidDevices(): Promise<FidoHidDevice[]> {
  const hid = await loadHid();
  if (!hid) return [];
  try {
    return selectFidoDevices(await hid.devicesAsync());
  } catch {
    return [];
  }
}

/** Calls `onChange` with the current keys whenever the set of plugged-in keys changes. Returns a stop function. */
export function watchFidoHidDevices(
  onChange: (devices: FidoHidDevice[]) => void,
  intervalMs = 750,
): () => void {
  let last = '';
  let stopped = false;
  const poll = async () => {
    const devices = await listFidoHidDevices();
    const key = devices
      .map((d) => d.path)
      .sort()
      .join('\n');
    if (!stopped && key !== last) {
      last = key;
      onChange(devices);
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** Pure: the bytes node-hid writes for one CTAPHID report (report ID 0, then the 64-byte report). */
export function hidOutputReport(report: Uint8Array): Buffer {
  if (report.length !== REPORT_SIZE) {
    throw new CtaphidError(
      'INVALID_PACKET_SIZE',
      `A CTAPHID report is ${REPORT_SIZE} bytes, not ${report.length}.`,
      {
        source: 'local',
      },
    );
  }
  return Buffer.concat([Buffer.from([0]), report]);
}

const READ_SLICE_MS = 100;

export class NodeHidTransport implements HidTransport {
  private constructor(private readonly device: Awaited<ReturnType<HidApi['HIDAsync']['open']>>) {}

  static async open(path: string): Promise<NodeHidTransport> {
    const hid = await loadHid();
    if (!hid) {
      throw new CtaphidError(
        'TRANSPORT_CLOSED',
        'USB security keys are not available on this machine (node-hid).',
        {
          source: 'local',
        },
      );
    }
    return new NodeHidTransport(await hid.HIDAsync.open(path));
  }

  async write(report: Uint8Array): Promise<void> {
    await this.device.write(hidOutputReport(report));
  }

  /** Reads in short slices, so an abort is noticed within READ_SLICE_MS. */
  async read(signal?: AbortSignal): Promise<Uint8Array> {
    for (;;) {
      if (signal?.aborted) {
        throw new CtaphidError('CANCELLED', 'The request to the security key was cancelled.', {
          source: 'local',
        });
      }
      const data = await this.device.read(READ_SLICE_MS);
      if (data && data.length > 0) {
        const report = new Uint8Array(REPORT_SIZE);
        report.set(data.subarray(0, REPORT_SIZE));
        return report;
      }
    }
  }

  async close(): Promise<void> {
    await this.device.close();
  }
}
