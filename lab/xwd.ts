// Xvfb keeps its screen as an XWD file (-fbdir); this turns it into a PNG with node:zlib only, for the
// README screenshot of the real app window (no ImageMagick on these machines).
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A 24/32-bit ZPixmap XWD (what Xvfb writes) as an RGB PNG. */
export function xwdToPng(xwd: Buffer): Buffer {
  const headerSize = xwd.readUInt32BE(0);
  const format = xwd.readUInt32BE(8);
  const width = xwd.readUInt32BE(16);
  const height = xwd.readUInt32BE(20);
  const byteOrder = xwd.readUInt32BE(28);
  const bitsPerPixel = xwd.readUInt32BE(44);
  const bytesPerLine = xwd.readUInt32BE(48);
  const colormapEntries = xwd.readUInt32BE(76); // ncolors: XWDColor entries of 12 bytes
  if (format !== 2 || bitsPerPixel !== 32)
    throw new Error(`unsupported XWD (format ${format}, ${bitsPerPixel} bpp)`);
  const pixels = headerSize + colormapEntries * 12;
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3);
    for (let x = 0; x < width; x++) {
      const value =
        byteOrder === 0
          ? xwd.readUInt32LE(pixels + y * bytesPerLine + x * 4)
          : xwd.readUInt32BE(pixels + y * bytesPerLine + x * 4);
      raw[row + 1 + x * 3] = (value >>> 16) & 0xff;
      raw[row + 2 + x * 3] = (value >>> 8) & 0xff;
      raw[row + 3 + x * 3] = value & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
