import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { xwdToPng } from './xwd';

/** A 2×1 XWD as Xvfb writes it: 100-byte header, no colormap, 32 bpp little-endian ZPixmap. */
function xwd(pixels: number[], byteOrder = 0): Buffer {
  const header = Buffer.alloc(100);
  const fields = [100, 7, 2, 24, pixels.length, 1, 0, byteOrder, 32, 0, 32, 32, pixels.length * 4];
  fields.forEach((value, i) => header.writeUInt32BE(value, i * 4));
  const body = Buffer.alloc(pixels.length * 4);
  pixels.forEach((p, i) => (byteOrder === 0 ? body.writeUInt32LE(p, i * 4) : body.writeUInt32BE(p, i * 4)));
  return Buffer.concat([header, body]);
}

describe('xwdToPng', () => {
  it('writes the pixels as an RGB PNG', () => {
    const png = xwdToPng(xwd([0xff0000, 0x00ff80]));
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(2);
    expect(png.readUInt32BE(20)).toBe(1);
    const idatAt = png.indexOf('IDAT');
    const length = png.readUInt32BE(idatAt - 4);
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + length));
    expect([...raw]).toEqual([0, 0xff, 0, 0, 0, 0xff, 0x80]);
  });

  it('refuses a format it does not read', () => {
    const bad = xwd([0]);
    bad.writeUInt32BE(1, 8);
    expect(() => xwdToPng(bad)).toThrow(/unsupported XWD/);
  });
});
