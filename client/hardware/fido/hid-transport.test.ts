import { describe, expect, it } from 'vitest';
import { REPORT_SIZE } from './ctaphid';
import { FIDO_USAGE_PAGE, hidOutputReport, listFidoHidDevices, selectFidoDevices } from './hid-transport';

describe('USB HID security keys', () => {
  it('selects only CTAPHID interfaces by the FIDO usage page, once per path', () => {
    const keys = selectFidoDevices([
      {
        path: '/dev/hidraw1',
        vendorId: 0x1050,
        productId: 0x0407,
        usagePage: FIDO_USAGE_PAGE,
        usage: 1,
        product: 'YubiKey',
      },
      { path: '/dev/hidraw1', vendorId: 0x1050, productId: 0x0407, usagePage: FIDO_USAGE_PAGE, usage: 1 },
      {
        path: '/dev/hidraw2',
        vendorId: 0x1050,
        productId: 0x0407,
        usagePage: 0x01,
        usage: 6,
        product: 'YubiKey keyboard',
      },
      { path: '/dev/hidraw3', vendorId: 0x1234, productId: 1, usagePage: FIDO_USAGE_PAGE, usage: 2 },
      { vendorId: 0x1234, productId: 2, usagePage: FIDO_USAGE_PAGE, usage: 1 },
    ]);
    expect(keys.map((k) => k.path)).toEqual(['/dev/hidraw1']);
    expect(keys[0]?.product).toBe('YubiKey');
  });

  it('prefixes report ID 0 and refuses a report of the wrong size', () => {
    const report = new Uint8Array(REPORT_SIZE).fill(7);
    const out = hidOutputReport(report);
    expect(out.length).toBe(REPORT_SIZE + 1);
    expect(out[0]).toBe(0);
    expect(out.subarray(1)).toEqual(Buffer.from(report));
    expect(() => hidOutputReport(new Uint8Array(63))).toThrow(
      expect.objectContaining({ code: 'INVALID_PACKET_SIZE' }),
    );
  });

  it('lists no keys on a machine without USB HID devices, without failing', async () => {
    // There is no /dev/uhid here (LAB.md), so no virtual key can appear: the list is empty, not an error.
    expect(await listFidoHidDevices()).toEqual([]);
  });
});
