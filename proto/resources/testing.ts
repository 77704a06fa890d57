// Fixtures for tests of the resource model (no production code imports this file).

/** A self-signed P-256 CA certificate ("Keyport Test Attestation CA", valid until 2126). */
export const TEST_CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBozCCAUmgAwIBAgIUbhOJ8OHhj+m+2Ue+OZs+tCXeh9UwCgYIKoZIzj0EAwIw
JjEkMCIGA1UEAwwbS2V5cG9ydCBUZXN0IEF0dGVzdGF0aW9uIENBMCAXDTI2MTEy
MzEzMzczMFoYDzIxMjYxMDMwMTMzNzMwWjAmMSQwIgYDVQQDDBtLZXlwb3J0IFRl
c3QgQXR0ZXN0YXRpb24gQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQcihVn
9hI1WI1znGTWYbKh9hHDbFEkKfRA+QPPvKAHd3R0jLC6hLfoQlw7+Hf08Ws7iJzv
ZLoAulSid9lu6V6No1MwUTAdBgNVHQ4EFgQUeZSZ0xBRWNgkv6ZZDxhbk6PGuJ4w
HwYDVR0jBBgwFoAUeZSZ0xBRWNgkv6ZZDxhbk6PGuJ4wDwYDVR0TAQH/BAUwAwEB
/zAKBggqhkjOPQQDAgNIADBFAiBgnV91nNElbet6n6GZ5S+JpjeaLFo+Wmt5TXV2
8K7V0QIhANr3NGai9JRroUwMmS3AQzcQm5VhJlS3W2jROX0or2e+
-----END CERTIFICATE-----
`;

/** Indents a multi-line string for use as a YAML block scalar. */
export function indentBlock(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .trimEnd()
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}
