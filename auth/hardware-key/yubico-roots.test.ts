import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parsePivAttestation, verifyPivAttestation } from './attestation';
import { YUBICO_PIV_INTERMEDIATES, YUBICO_PIV_ROOTS } from './yubico-roots';

const fingerprint = (certificate: X509Certificate) =>
  createHash('sha256').update(certificate.raw).digest('hex').toUpperCase();
const roots = YUBICO_PIV_ROOTS.map((pem) => new X509Certificate(pem));
const intermediates = YUBICO_PIV_INTERMEDIATES.map((pem) => new X509Certificate(pem));

// A real YubiKey 5.7.4 attestation of a slot 9c key (PIN always, touch always), with the card's f9
// certificate, as published in a public repository: public certificates, used as a test vector.
const REAL_F9 = `-----BEGIN CERTIFICATE-----
MIIC8DCCAdqgAwIBAgIJALo25FZYZJYbMAsGCSqGSIb3DQEBCzAlMSMwIQYDVQQD
DBpZdWJpY28gUElWIEF0dGVzdGF0aW9uIEIgMTAgFw0yNDEyMDEwMDAwMDBaGA85
OTk5MTIzMTIzNTk1OVowITEfMB0GA1UEAwwWWXViaWNvIFBJViBBdHRlc3RhdGlv
bjCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALcKTvN4UA+ve35Fauus
c5FOpJ+sjbdChdujlwJqBqgr7iIWwix7Y2+ElhtdLRPtnh9xJ5NQ/kj5MbuQYjHQ
QZCagyVgiZhLV2Z7BzovCw/tGFkY311TTaDfk1DABxAT8cMb6AOQa5fHzqNwagWt
A3KTEPOUvBn8NKavxN5UmEoqL5OUdQbphWxQY8UhOgnWMeao30Vrx8ebyA5osIhD
W9A10b5Pd4rgb11aa82P9C1cAPLsGvaq9ufaI2Yce890eJ037Jis6I1r3qHz6Ivx
dXgr5UXyOhslGpKr1jz983UjSnaKWbbSYIv6OuEqUbUqjIpSA2dRYJ3gcnMTKnQc
y+cCAwEAAaMpMCcwEQYKKwYBBAGCxAoDAwQDBQcEMBIGA1UdEwEB/wQIMAYBAf8C
AQAwCwYJKoZIhvcNAQELA4IBAQBqtYVRoyvkCHQO6m5xy5e4K/gE8apPoCmHmZXp
7p6q5mtuFMbNHwuc/3yrllTlyov8JpZzY7U1Dwl2rK7H6pV9gVOCngesZsWk7eNH
4hqGpG73/6+ymyokeADRD3AqdM6VurEa1HXL7qb9Rl3Hr8+YQXk/HpaDAyub/TN3
9Jxhydpn18L1fEDzVLq9kPuc4fBEK/ZmzHAH87a0o+sVVQ94MfcNAQhN4T3noUhX
kq2fKhJQnOMg0SE2IKXblhZNTZXr0r55ssHyWwwFH9txKVtvr9voFaFMs2oOnFk6
Qy6DcUD5rosE9WGo6r2HHBCda+J/kbm5BE1NPr4y8QzXIG8g
-----END CERTIFICATE-----
`;
const REAL_SLOT_9C = `-----BEGIN CERTIFICATE-----
MIICVTCCAT2gAwIBAgIQAWMelEUa/hQ4ZF0VuptumjANBgkqhkiG9w0BAQsFADAh
MR8wHQYDVQQDDBZZdWJpY28gUElWIEF0dGVzdGF0aW9uMCAXDTI0MTIwMTAwMDAw
MFoYDzk5OTkxMjMxMjM1OTU5WjAlMSMwIQYDVQQDDBpZdWJpS2V5IFBJViBBdHRl
c3RhdGlvbiA5YzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFgjT10jyi1pz29i
d5CDyCHtqBAIspZRBBgwxQNQRpWhzoIJauzmqNoyE82oawoD42BL5X5VY5h6PXIS
nsfX6dejTjBMMBEGCisGAQQBgsQKAwMEAwUHBDAUBgorBgEEAYLECgMHBAYCBAJR
qQkwEAYKKwYBBAGCxAoDCAQCAwIwDwYKKwYBBAGCxAoDCQQBAzANBgkqhkiG9w0B
AQsFAAOCAQEANx5sLbC5qkP4bQh9C6jlNOVexzaWhBah+FFhZVORdhsuGoyVRd4Q
T0vdNRzDo85DL/iyIG8wt/lZEpzjIsE04UrYl0mKle7iYHeSML7aPX6Y8rLaJAW9
tdAhFm3UU09MHY5HNJVQ+BDLHgG3MsgwygXdrFDWIzegg+VlsjpQeEZ9x9GXM+mu
i658t51IHlp2NBjqq4Z9v4oUFZVfJGT1BBOa0dwxBNK6g5IqitrcP7e8eiMn10Rc
sFfGVmp2PuYi+OP7KovXIzRYR2+eXBFoQIL47w2jfTh/jKMtwXCESUF4NAN1VR+x
zAkYdBHM7Y1r3UiV29cKqvhAMAUDtA5Exg==
-----END CERTIFICATE-----
`;

describe("Yubico's PIV attestation roots", () => {
  it('are the roots whose SHA-256 fingerprints Yubico publishes, each self-signed', () => {
    expect(roots.map((root) => [root.subject, fingerprint(root)])).toEqual([
      [
        'CN=Yubico PIV Root CA Serial 263751',
        '7E996A28E3055223733C9AEC897900EDA9B746E3E15D419556AC6A1179879A50',
      ],
      [
        'CN=Yubico PIV Root CA Serial 263751',
        '63ECE914E54DD87915F34033C85AF4C0696BA1512F8ADD66CED738331207B546',
      ],
      ['CN=Yubico Attestation Root 1', '62760C6A6EF91679F454C8902B80FD009825B3F25DA90F1FBACE2EC6586CD5A8'],
    ]);
    for (const root of roots) {
      expect(root.ca).toBe(true);
      expect(root.checkIssued(root)).toBe(true);
      expect(root.verify(root.publicKey)).toBe(true);
    }
    // The two versions of the PIV root carry one key.
    expect(roots[0]!.publicKey.equals(roots[1]!.publicKey)).toBe(true);
  });

  it("are Yubico's PIV intermediates, chained to Attestation Root 1", () => {
    expect(intermediates.map((certificate) => [certificate.subject, fingerprint(certificate)])).toEqual([
      [
        'CN=Yubico Attestation Intermediate A 1',
        '4698A1D3389C3EC60016C216250F1D0439922832D65142327436376DC2942B55',
      ],
      [
        'CN=Yubico Attestation Intermediate B 1',
        'D4CC3F456FDAF4E7812A21AAB1DFE9D8E27D24E2FD2D6F21C9940109F0DAA754',
      ],
      ['CN=Yubico PIV Attestation A 1', '6DE693F05376F5D8CA29069261E1C8626C75D503BD2EDBFD75354CAD1F722870'],
      ['CN=Yubico PIV Attestation B 1', '2D55B7998F4E42569D6D8FA382B6DC77D1DACF07358B19701163892922B17052'],
    ]);
    const [intermediateA, intermediateB, pivA, pivB] = intermediates as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];
    const root1 = roots[2]!;
    for (const [child, parent] of [
      [intermediateA, root1],
      [intermediateB, root1],
      [pivA, intermediateA],
      [pivB, intermediateB],
    ] as const) {
      expect(child.ca).toBe(true);
      expect(child.checkIssued(parent)).toBe(true);
      expect(child.verify(parent.publicKey)).toBe(true);
    }
  });

  it("verify a real YubiKey 5.7.4 attestation through Yubico's shipped intermediates, with f9 alone", () => {
    const slotCertificate = new X509Certificate(REAL_SLOT_9C);
    const parsed = parsePivAttestation({
      slotCertificate: new Uint8Array(slotCertificate.raw),
      attestationCertificate: new Uint8Array(new X509Certificate(REAL_F9).raw),
    });
    expect(parsed.facts).toEqual({
      firmware: '5.7.4',
      serial: 38906121,
      pinPolicy: 'always',
      touchPolicy: 'always',
      formFactor: 3,
      slot: '9c',
    });
    const verified = verifyPivAttestation(parsed, {
      sessionKey: slotCertificate.publicKey,
      required: 'hardware_key_touch_and_pin',
      extraRoots: [],
      now: new Date('2026-12-01T00:00:00Z'),
    });
    expect(verified).toMatchObject({
      policy: 'hardware_key_touch_and_pin',
      root: 'CN=Yubico Attestation Root 1',
    });
  });
});
