// TPM 2.0 marshalling (Part 1 §18, Part 2 §4): big-endian integers and TPM2B (a 16-bit size, then that
// many bytes). The reader is bounded: every read past the end, every TPM2B over its maximum and every
// trailing byte is a TpmFormatError naming the field — never a RangeError, never a loop on input.
import { TpmFormatError } from './errors';

export class TpmReader {
  private offset = 0;

  constructor(
    private readonly buffer: Uint8Array,
    /** The caller's field path, carried into every error (e.g. 'ak_public'). */
    readonly fieldPath: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  fail(detail: string): never {
    throw new TpmFormatError(this.fieldPath, `${detail} (at byte ${this.offset})`);
  }

  private take(length: number, what: string): Uint8Array {
    if (length > this.remaining) this.fail(`${what} needs ${length} bytes, ${this.remaining} left`);
    const out = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  u8(what: string): number {
    return this.take(1, what)[0]!;
  }

  u16(what: string): number {
    const b = this.take(2, what);
    return (b[0]! << 8) | b[1]!;
  }

  u32(what: string): number {
    const b = this.take(4, what);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }

  u64(what: string): bigint {
    const hi = BigInt(this.u32(what));
    return (hi << 32n) | BigInt(this.u32(what));
  }

  /** A copy of the next `length` bytes. */
  bytes(length: number, what: string): Uint8Array {
    return Uint8Array.from(this.take(length, what));
  }

  /** A TPM2B's contents (a copy), refusing a size over `max`. */
  tpm2b(max: number, what: string): Uint8Array {
    const size = this.u16(`${what} size`);
    if (size > max) this.fail(`${what} is ${size} bytes, at most ${max} allowed`);
    return this.bytes(size, what);
  }

  /** Refuses trailing bytes. */
  end(what: string): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes after ${what}`);
  }
}

export class TpmWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  private checkInt(value: number, bits: number, what: string): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
      throw new RangeError(`${what} ${value} does not fit in ${bits} bits`);
    }
  }

  u8(value: number, what = 'value'): this {
    this.checkInt(value, 8, what);
    return this.push(Uint8Array.of(value));
  }

  u16(value: number, what = 'value'): this {
    this.checkInt(value, 16, what);
    return this.push(Uint8Array.of(value >>> 8, value & 0xff));
  }

  u32(value: number, what = 'value'): this {
    this.checkInt(value, 32, what);
    return this.push(Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff));
  }

  u64(value: bigint, what = 'value'): this {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`${what} ${value} does not fit in 64 bits`);
    return this.u32(Number(value >> 32n), what).u32(Number(value & 0xffffffffn), what);
  }

  bytes(value: Uint8Array): this {
    return this.push(Uint8Array.from(value));
  }

  tpm2b(value: Uint8Array, what = 'TPM2B'): this {
    if (value.length > 0xffff) throw new RangeError(`${what} of ${value.length} bytes is over 65535`);
    return this.u16(value.length, what).bytes(value);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
