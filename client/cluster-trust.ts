// Trusting a cluster: the CA is pinned by the SHA-256 of its SubjectPublicKeyInfo. The first connection
// fetches the chain without trusting it, and only a CA whose pin the person accepted (or passed with
// --ca-pin) is ever used as a trust root. Later connections verify TLS against that CA alone.
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { DetailedPeerCertificate } from 'node:tls';
import { KeyportError } from '../proto/errors';

export interface ClusterAddress {
  host: string;
  port: number;
}

export interface PresentedChain {
  caPem: string;
  caPin: string;
}

/**
 * The one parser of cluster addresses, for the CLI and the app: HOST or HOST:PORT (3025 by default),
 * IPv6 in brackets. A URL is refused, not quietly trimmed: the cluster speaks gRPC over TLS, and
 * "http://" there says the person meant something else.
 */
export function parseClusterAddress(text: string): ClusterAddress {
  const trimmed = text.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `"${text}" is a URL, not a cluster address: give HOST:PORT without "${/^[^:]+/.exec(trimmed)?.[0]}://".`,
      { fieldPath: 'cluster' },
    );
  }
  const match = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d{1,5}))?$/.exec(trimmed);
  const port = Number(match?.[3] ?? 3025);
  if (!match || port < 1 || port > 65535) {
    throw new KeyportError('INVALID_ARGUMENT', `"${text}" is not a cluster address; use HOST:PORT.`, {
      fieldPath: 'cluster',
    });
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

/**
 * A cluster given as several replicas' addresses, comma-separated (`a:3025,b:3025`): each entry parsed as
 * parseClusterAddress does, in order (the first is the canonical one: profiles and the trusted-cluster
 * record are keyed by it). An empty entry or the same address twice is refused, not quietly dropped.
 */
export function parseClusterAddresses(text: string): ClusterAddress[] {
  const entries = text.split(',');
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    if (!entry.trim()) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `"${text}" has an empty entry (number ${index + 1}); give HOST:PORT or HOST:PORT,HOST:PORT,...`,
        { fieldPath: 'cluster' },
      );
    }
    const address = parseClusterAddress(entry);
    const key = formatClusterAddress(address).toLowerCase();
    if (seen.has(key)) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `"${text}" names ${formatClusterAddress(address)} twice; give each auth server once.`,
        { fieldPath: 'cluster' },
      );
    }
    seen.add(key);
    return address;
  });
}

export function formatClusterAddress(address: ClusterAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

export function pinOf(certificate: X509Certificate): string {
  const spki = certificate.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

export function normalizePin(pin: string): string {
  const hex = pin
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new KeyportError('INVALID_ARGUMENT', `"${pin}" is not a CA pin; expected sha256:<64 hex digits>.`, {
      fieldPath: 'ca_pin',
    });
  }
  return `sha256:${hex}`;
}

/**
 * Fetches the certificate chain the cluster presents, without trusting it, and checks that it is a
 * host certificate for `address` issued by the self-signed CA that comes with it. The caller compares
 * the returned pin with the one it expects before trusting anything.
 */
export async function fetchPresentedChain(
  address: ClusterAddress,
  timeoutMs = 5000,
): Promise<PresentedChain> {
  const peer = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = connect({
      host: address.host,
      port: address.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      ...(isIP(address.host) ? {} : { servername: address.host }),
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate(true);
      socket.end();
      resolve(certificate);
    });
    socket.once('error', reject);
  }).catch((error: Error) => {
    throw new KeyportError(
      'UNAVAILABLE',
      `Cannot reach the cluster at ${formatClusterAddress(address)}: ${error.message}`,
    );
  });
  const untrusted = (why: string) =>
    new KeyportError(
      'CA_PIN_MISMATCH',
      `The cluster at ${formatClusterAddress(address)} ${why}; refusing to trust it.`,
    );
  if (!peer.raw || !peer.issuerCertificate?.raw) throw untrusted('sent no CA certificate');
  const leaf = new X509Certificate(peer.raw);
  const ca = new X509Certificate(peer.issuerCertificate.raw);
  if (!ca.ca || !ca.verify(ca.publicKey))
    throw untrusted('sent a CA certificate that is not a self-signed CA');
  if (!leaf.verify(ca.publicKey) || !leaf.checkIssued(ca))
    throw untrusted('sent a host certificate its CA did not sign');
  const matchesHost = isIP(address.host) ? leaf.checkIP(address.host) : leaf.checkHost(address.host);
  if (!matchesHost) throw untrusted(`presented a certificate that is not for ${address.host}`);
  return { caPem: ca.toString(), caPin: pinOf(ca) };
}

/** Checks that a stored CA still matches its pin (a profile edited by hand must not widen trust). */
export function checkStoredCa(caPem: string, expectedPin: string): void {
  if (pinOf(new X509Certificate(caPem)) !== normalizePin(expectedPin)) {
    throw new KeyportError(
      'CA_PIN_MISMATCH',
      'The stored cluster CA does not match its pin; remove the profile and trust the cluster again.',
    );
  }
}

/** `expected` is a pin trusted earlier ('trusted') or one just given with --ca-pin ('given'). */
export function pinMismatchError(
  address: ClusterAddress,
  expected: string,
  presented: string,
  source: 'trusted' | 'given' = 'trusted',
): KeyportError {
  const headline =
    source === 'trusted'
      ? `WARNING: the CA of ${formatClusterAddress(address)} has changed.`
      : `WARNING: the CA of ${formatClusterAddress(address)} does not match the pin you gave.`;
  return new KeyportError(
    'CA_PIN_MISMATCH',
    [
      headline,
      `  ${source === 'trusted' ? 'trusted: ' : 'given:   '}  ${expected}`,
      `  presented: ${presented}`,
      'Someone may be intercepting the connection, or the cluster was rebuilt.',
      'If the change is expected, remove the cluster (keyport logout --forget) and trust it again.',
    ].join('\n'),
  );
}
