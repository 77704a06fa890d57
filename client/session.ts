// Connecting as someone: trusting the cluster first (pinned CA, trust on first use), then the signed-in
// profile's certificate with its session key's signer (the key stays in the keystore's signer).
import { X509Certificate } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { connectCluster } from './api';
import type { ClusterApi } from './api';
import {
  checkStoredCa,
  fetchPresentedChain,
  formatClusterAddress,
  normalizePin,
  pinMismatchError,
} from './cluster-trust';
import type { ClusterAddress } from './cluster-trust';
import { openKeyStore, openSoftwareSigner } from './keystore';
import type { SessionSigner } from './keystore';
import { openProfileCardSigner } from './ceremonies/hardware-key';
import type { CardSessions } from './hardware/piv/card-sessions';
import type { PivPrompts } from './hardware/piv/signer';
import { originFor } from './webauthn';
import { connectRetryingReads, REPLICA_CONNECT_TIMEOUT_MS } from './replicas';
import type { Profile, ProfileStore, TrustedCluster } from './profiles';
import { parseClusterAddress } from './cluster-trust';
import { now } from '../proto/clock';

/** No profile to act with: one error, one code (UNAUTHENTICATED, exit 3) wherever it is met. */
export function notSignedIn(hint = 'run `keyport login`'): KeyportError {
  return new KeyportError('UNAUTHENTICATED', `Not signed in: ${hint}.`, { resolvableByRelogin: true });
}

export interface TrustPrompt {
  /** Trust on first use: show the pin and ask. Resolve false to refuse. */
  confirmCaPin(address: string, caPin: string): Promise<boolean>;
}

export interface TrustOptions {
  /** `--ca-pin`: trust exactly this CA, with no prompt. */
  caPin?: string;
  prompt: TrustPrompt;
  onCall?: (method: string) => void;
  /**
   * Every replica's address, the canonical one (`address`) first, when the cluster was given with several:
   * they are tried in order, and remembered with the trusted cluster.
   */
  replicas?: ClusterAddress[];
}

/** The replica list to store: the formatted addresses when there are several, undefined otherwise. */
function replicaList(replicas: ClusterAddress[] | undefined): string[] | undefined {
  return replicas && replicas.length > 1 ? replicas.map(formatClusterAddress) : undefined;
}

/** True when `replicas` (given with several addresses) is not what the trusted cluster remembers. */
function replicasChanged(stored: TrustedCluster, replicas: ClusterAddress[] | undefined): boolean {
  const given = replicaList(replicas);
  return given !== undefined && given.join(',') !== (stored.replicas ?? []).join(',');
}

/**
 * The cluster as already trusted (stored, and matching `caPin` when one is given), without asking,
 * fetching or saving anything; undefined when ensureTrustedCluster would have more to do.
 */
export async function storedTrustedCluster(
  profiles: ProfileStore,
  address: ClusterAddress,
  caPin: string | undefined,
  replicas?: ClusterAddress[],
): Promise<TrustedCluster | undefined> {
  const expectedPin = caPin ? normalizePin(caPin) : undefined;
  const stored = await profiles.getTrustedCluster(address);
  if (stored && (!expectedPin || expectedPin === stored.caPin) && !replicasChanged(stored, replicas)) {
    checkStoredCa(stored.caPem, stored.caPin);
    return stored;
  }
  return undefined;
}

export async function ensureTrustedCluster(
  profiles: ProfileStore,
  address: ClusterAddress,
  options: TrustOptions,
): Promise<TrustedCluster> {
  const expectedPin = options.caPin ? normalizePin(options.caPin) : undefined;
  const stored = await profiles.getTrustedCluster(address);
  if (stored && (!expectedPin || expectedPin === stored.caPin)) {
    checkStoredCa(stored.caPem, stored.caPin);
    if (!replicasChanged(stored, options.replicas)) return stored;
    // Another list of replicas for a CA already trusted: every connection to any of them verifies TLS
    // against that CA, so the list is remembered without asking.
    const updated = { ...stored, replicas: replicaList(options.replicas) };
    await profiles.trustCluster(updated);
    return updated;
  }
  // The chain from the first replica that answers (one address: that one, as it always was).
  const candidates = options.replicas && options.replicas.length > 1 ? options.replicas : [address];
  let presented: Awaited<ReturnType<typeof fetchPresentedChain>> | undefined;
  let reached = address;
  let unreachable: unknown;
  for (const candidate of candidates) {
    try {
      presented = await fetchPresentedChain(
        candidate,
        candidates.length > 1 ? REPLICA_CONNECT_TIMEOUT_MS : undefined,
      );
      reached = candidate;
      break;
    } catch (error) {
      if (!(error instanceof KeyportError) || error.code !== 'UNAVAILABLE') throw error;
      unreachable ??= error;
    }
  }
  if (!presented) throw unreachable;
  if (expectedPin && presented.caPin !== expectedPin) {
    throw pinMismatchError(
      address,
      expectedPin,
      presented.caPin,
      stored?.caPin === expectedPin ? 'trusted' : 'given',
    );
  }
  if (!expectedPin && stored && presented.caPin !== stored.caPin) {
    throw pinMismatchError(address, stored.caPin, presented.caPin);
  }
  if (!expectedPin && !(await options.prompt.confirmCaPin(formatClusterAddress(address), presented.caPin))) {
    throw new KeyportError('CANCELLED', 'The cluster CA was not trusted; nothing was saved.');
  }
  const api = connectCluster({
    address: reached,
    caPem: presented.caPem,
    caPin: presented.caPin,
    onCall: options.onCall,
  });
  try {
    const info = await api.auth.getClusterInfo({});
    const trusted: TrustedCluster = {
      address: formatClusterAddress(address),
      name: info.clusterName,
      publicAddr: info.publicAddr,
      connectorName: info.connectorName,
      secondFactors: [...info.secondFactors],
      allowPasswordless: info.allowPasswordless,
      ...(replicaList(options.replicas) ? { replicas: replicaList(options.replicas) } : {}),
      caPin: presented.caPin,
      caPem: presented.caPem,
      trustedAtMs: Date.now(),
      deviceTrust: { mode: info.deviceTrustMode || 'off', autoEnroll: info.deviceAutoEnroll },
      ...(stored?.lastUser ? { lastUser: stored.lastUser } : {}),
      ...(stored?.deviceCredentialId ? { deviceCredentialId: stored.deviceCredentialId } : {}),
    };
    await profiles.trustCluster(trusted);
    return trusted;
  } finally {
    api.close();
  }
}

export function connectTrusted(trusted: TrustedCluster, onCall?: (method: string) => void): ClusterApi {
  return connectCluster({
    address: parseClusterAddress(trusted.address),
    caPem: trusted.caPem,
    caPin: trusted.caPin,
    onCall,
  });
}

/**
 * The API as the profile's user, on the cluster's replica that answered last; its reads move to another
 * replica when that one stops answering, and `notice` says so. The session key proves itself by mTLS with
 * the login certificate, or, with `proofOfPossession`, by a proof signed on every call (no TLS client
 * certificate). The key is read from the keystore before connecting (mTLS) or at the first call (proof).
 */
export async function connectAsProfile(
  profiles: ProfileStore,
  profile: Profile,
  onCall?: (method: string) => void,
  options: {
    notice?: (message: string) => void;
    proofOfPossession?: boolean;
    /** For a session key on a PIV card: its PIN and "Tap your YubiKey" (default: no PIN can be asked). */
    piv?: PivPrompts;
    /** The process's long-lived card sessions (the app's); without, the card is opened for this API alone. */
    cards?: CardSessions;
  } = {},
): Promise<ClusterApi> {
  const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
  if (!trusted) {
    throw new KeyportError(
      'CA_PIN_MISMATCH',
      `The cluster ${profile.address} is no longer trusted; sign in again.`,
    );
  }
  checkStoredCa(trusted.caPem, trusted.caPin);
  if (profile.expiresMs <= now()) {
    throw new KeyportError(
      'CERTIFICATE_EXPIRED',
      `Your session on ${profile.address} has expired: run \`keyport login\`.`,
      {
        resolvableByRelogin: true,
      },
    );
  }
  // A card's key cannot leave the card: its signer is not exportable, so its calls carry a proof of possession.
  const card = openProfileSigner(profiles, profile, options.piv, options.cards);
  const { signer } = card;
  let api: ClusterApi;
  try {
    api = await connectRetryingReads(trusted, {
      session: {
        signer,
        certificatePem: profile.tlsCertPem,
        ...(options.proofOfPossession ? { proofOfPossession: true } : {}),
      },
      onCall,
      profiles,
      ...(options.notice ? { notice: options.notice } : {}),
    });
  } catch (error) {
    await card.close();
    throw error;
  }
  const close = api.close.bind(api);
  api.close = () => {
    close();
    void card.close().catch(() => {});
  };
  return api;
}

/**
 * The signer of a profile's session key, wherever the key is: on a PIV card (opened at the first signature,
 * with `piv` to ask its PIN and say "Tap your YubiKey"; `close` ends its PC/SC session, or, with `cards`,
 * that card's long-lived session, which `close` leaves open), or in the keystore (profileSigner; `close`
 * does nothing).
 */
export function openProfileSigner(
  profiles: ProfileStore,
  profile: Profile,
  piv?: PivPrompts,
  cards?: CardSessions,
): { signer: SessionSigner; close(): Promise<void> } {
  if (profile.hardwareKey) {
    const publicKey = new X509Certificate(profile.tlsCertPem).publicKey;
    return cards
      ? openProfileCardSigner(profile.hardwareKey, publicKey, piv, cards)
      : openProfileCardSigner(profile.hardwareKey, publicKey, piv);
  }
  return { signer: profileSigner(profiles, profile), close: () => Promise.resolve() };
}

/**
 * The signer of a profile's session key: the key in the profile's keystore under its id, whose public half
 * is the session certificate's. Nothing is read from the keystore until the key is first used. A key on a
 * PIV card gives the card's signer, which cannot ask for a PIN and whose PC/SC session lasts as long as the
 * process: openProfileSigner gives one with prompts and a close.
 */
export function profileSigner(profiles: ProfileStore, profile: Profile): SessionSigner {
  if (profile.hardwareKey) return openProfileSigner(profiles, profile).signer;
  return openSoftwareSigner(
    openKeyStore(profile.keystore, profiles.home),
    profile.keyId,
    new X509Certificate(profile.tlsCertPem).publicKey,
  );
}

/** The WebAuthn origin for a cluster: its public address as https://host[:port]. */
export function webauthnOrigin(trusted: TrustedCluster): string {
  return originFor(trusted.publicAddr || trusted.address);
}
