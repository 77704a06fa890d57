// The SSH wire types of RFC 4251 §5 (uint32, uint64, string, mpint), as used by OpenSSH keys and
// certificates. Pure encoding: no I/O, no key handling.
import { CaError } from './errors';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function sshUint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

export function sshUint64(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(value);
  return bytes;
}

export function sshString(data: Uint8Array | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([sshUint32(bytes.length), bytes]);
}

/** Reads a blob front to back; every read past the end is a typed INVALID_ARGUMENT naming `what`. */
export class SshWireReader {
  private offset = 0;

  constructor(
    private readonly bytes: Buffer,
    private readonly what: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  get atEnd(): boolean {
    return this.offset === this.bytes.length;
  }

  readUint32(): number {
    this.require(4);
    const value = this.bytes.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  readUint64(): bigint {
    this.require(8);
    const value = this.bytes.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  readString(): Buffer {
    const length = this.readUint32();
    this.require(length);
    const value = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  readUtf8(): string {
    const raw = this.readString();
    try {
      return utf8.decode(raw);
    } catch {
      throw this.malformed('a text field is not valid UTF-8');
    }
  }

  /** RFC 4251 §5 mpint, which must be non-negative here; returned big-endian without leading zeros. */
  readPositiveMpint(): Buffer {
    const raw = this.readString();
    if (raw.length > 0 && (raw[0]! & 0x80) !== 0) throw this.malformed('negative mpint');
    let start = 0;
    while (start < raw.length && raw[start] === 0) start += 1;
    return raw.subarray(start);
  }

  expectEnd(): void {
    if (!this.atEnd) throw this.malformed(`${this.bytes.length - this.offset} unexpected trailing bytes`);
  }

  malformed(detail: string): CaError {
    return new CaError('INVALID_ARGUMENT', `malformed ${this.what}: ${detail}`);
  }

  private require(length: number): void {
    if (this.bytes.length - this.offset < length) throw this.malformed('truncated');
  }
}
