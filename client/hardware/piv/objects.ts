// The certificate data objects (SP 800-73-4 Part 1 Table 3 and Part 1 Appendix A, "X.509 Certificate for
// PIV Authentication" and its siblings): which object holds which slot's certificate, and the layout
// inside 53: 70 certificate, 71 CertInfo (b0 set: the certificate is gzip-compressed, as ykman may write
// it), an optional 72 MSCUID, FE error detection code (always empty). Pure.
import type { X509Certificate } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { PivSlot } from './commands';
import { MAX_CERTIFICATE_BYTES, parseCertificateDer } from './commands';
import { invalidArgument, malformed } from './errors';
import { concatBytes, decodeTlvMap, encodeTlv, requireTag } from './tlv';

export const CERTIFICATE_OBJECT: Record<PivSlot, number> = {
  0x9a: 0x5fc105,
  0x9c: 0x5fc10a,
  0x9d: 0x5fc10b,
  0x9e: 0x5fc101,
};

/** YubiKey's f9 attestation certificate, in the same layout (the key in f9 signs ATTEST's answers). */
export const ATTESTATION_CERTIFICATE_OBJECT = 0x5fff01;

const CERT_INFO_COMPRESSED = 0x01;

/** 53's content for a certificate: 70{DER} 71{00} FE{}. */
export function encodeCertificateObject(der: Uint8Array): Uint8Array {
  if (der.length === 0 || der.length > MAX_CERTIFICATE_BYTES)
    throw invalidArgument(
      `A certificate for a PIV slot is 1 to ${MAX_CERTIFICATE_BYTES} bytes, not ${der.length}`,
    );
  parseCertificateDerForWrite(der);
  return concatBytes(encodeTlv(0x70, der), encodeTlv(0x71, Uint8Array.of(0x00)), encodeTlv(0xfe));
}

function parseCertificateDerForWrite(der: Uint8Array): void {
  try {
    parseCertificateDer(der, 'a certificate');
  } catch {
    throw invalidArgument('Only an X.509 certificate in DER can be written to a PIV slot');
  }
}

/** A certificate object's content (inside 53) as the certificate, decompressed when CertInfo says so. */
export function decodeCertificateObject(content: Uint8Array): X509Certificate {
  const fields = decodeTlvMap(content, [0x70, 0x71, 0x72, 0xfe]);
  let der = requireTag(fields, 0x70, 'the certificate');
  const info = fields.get(0x71);
  if (info !== undefined && info.length !== 1) throw malformed(`a CertInfo of ${info.length} bytes`);
  if (info !== undefined && (info[0]! & CERT_INFO_COMPRESSED) !== 0) {
    try {
      der = new Uint8Array(gunzipSync(der, { maxOutputLength: MAX_CERTIFICATE_BYTES }));
    } catch {
      throw malformed('a compressed certificate that does not decompress');
    }
  }
  return parseCertificateDer(der, 'a certificate');
}
