import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CERTIFICATE_OBJECT, decodeCertificateObject, encodeCertificateObject } from './objects';
import { FIXTURE_CERT_DER, expectReason, h, toHex } from './test-bytes.test-support';
import { concatBytes, encodeTlv } from './tlv';

describe('certificate objects', () => {
  it('names the objects of SP 800-73-4 for 9a, 9c, 9d and 9e', () => {
    expect(CERTIFICATE_OBJECT).toEqual({ 0x9a: 0x5fc105, 0x9c: 0x5fc10a, 0x9d: 0x5fc10b, 0x9e: 0x5fc101 });
  });

  it('writes 70{cert} 71{00} FE{}', () => {
    const content = encodeCertificateObject(FIXTURE_CERT_DER);
    expect(toHex(content.subarray(0, 4))).toBe('70820197');
    expect(toHex(content.subarray(-5))).toBe('710100FE00');
    expect(content.length).toBe(4 + FIXTURE_CERT_DER.length + 5);
  });

  it('round-trips a certificate', () => {
    const certificate = decodeCertificateObject(encodeCertificateObject(FIXTURE_CERT_DER));
    expect(new Uint8Array(certificate.raw)).toEqual(FIXTURE_CERT_DER);
  });

  it('reads a gzip-compressed certificate when CertInfo says so', () => {
    const content = concatBytes(encodeTlv(0x70, gzipSync(FIXTURE_CERT_DER)), h('710101 FE00'));
    expect(new Uint8Array(decodeCertificateObject(content).raw)).toEqual(FIXTURE_CERT_DER);
  });

  it('refuses what is not a certificate object', () => {
    expectReason(() => decodeCertificateObject(h('710100 FE00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeCertificateObject(h('7003 020101 710100')), 'MALFORMED_RESPONSE');
    expectReason(
      () => decodeCertificateObject(concatBytes(encodeTlv(0x70, FIXTURE_CERT_DER), h('71020000'))),
      'MALFORMED_RESPONSE',
    );
    expectReason(
      () => decodeCertificateObject(concatBytes(encodeTlv(0x70, h('0011')), h('710101'))),
      'MALFORMED_RESPONSE',
    );
    expectReason(
      () => decodeCertificateObject(concatBytes(encodeTlv(0x70, FIXTURE_CERT_DER), h('9900'))),
      'MALFORMED_RESPONSE',
    );
  });

  it('refuses to write what is not a DER certificate', () => {
    expectReason(() => encodeCertificateObject(h('3003020101')), 'INVALID_ARGUMENT');
    expectReason(() => encodeCertificateObject(new Uint8Array(0)), 'INVALID_ARGUMENT');
  });
});
