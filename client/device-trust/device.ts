// This device's TPM as device trust uses it: the data to enroll it (EK, AK, asset tag, OS), its credential
// id, and answers to the cluster's device challenges (activate the sealed credential, quote the nonce).
// Nothing here is secret: the AK's private part never leaves the TPM.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { KeyportError } from '../../proto/errors';
import type { DeviceChallenge, DeviceChallengeResponse, DeviceData } from '../../proto/gen/keyport/v1/device';
import type { Tpm, TpmKey } from '../hardware/tpm/helper';
import { deviceAssetTag, deviceOsType } from './asset-tag';

export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

export interface DeviceTrustOptions {
  env?: NodeJS.ProcessEnv;
  /** The helper binary, when not the default. */
  helperPath?: string;
}

/** A credential's id: base64url(SHA-256(the AK's TPMT_PUBLIC)), as the cluster computes it. */
export function credentialIdOf(akPublic: Uint8Array): string {
  return createHash('sha256').update(akPublic).digest('base64url');
}

/** Whether this machine has a TPM to try: KEYPORT_TPM_TCTI names one, or the kernel's resource manager. */
export function tpmConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.KEYPORT_TPM_TCTI) || existsSync(DEFAULT_TPM_DEVICE);
}

export class TrustedDevice {
  private ak: TpmKey | undefined;

  private constructor(
    readonly tpm: Tpm,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async open(options: DeviceTrustOptions = {}): Promise<TrustedDevice> {
    const env = options.env ?? process.env;
    // The TPM helper's client (and its zod schemas) loads when a device is opened, not at every CLI start.
    const { openTpm } = await import('../hardware/tpm/helper');
    const tpm = await openTpm({ tcti: env.KEYPORT_TPM_TCTI, helperPath: options.helperPath, env });
    return new TrustedDevice(tpm, env);
  }

  /** The persisted attestation key, if this machine has made one. */
  async attestationKey(): Promise<TpmKey | undefined> {
    this.ak ??= await this.tpm.attestationKey();
    return this.ak;
  }

  async credentialId(): Promise<string | undefined> {
    const ak = await this.attestationKey();
    return ak ? credentialIdOf(ak.publicArea) : undefined;
  }

  /** What enrollment sends: asset tag, OS, EK (certificate and public area) and the AK (made once). */
  async enrollmentData(): Promise<DeviceData> {
    const assetTag = deviceAssetTag(this.env);
    const ek = await this.tpm.endorsementKey();
    this.ak = (await this.attestationKey()) ?? (await this.tpm.createAttestationKey());
    return {
      osType: deviceOsType(),
      assetTag,
      ekCertificate: Buffer.from(ek.certificateDer ?? new Uint8Array()),
      ekPublic: Buffer.from(ek.publicArea),
      akPublic: Buffer.from(this.ak.publicArea),
    };
  }

  /** The answer to a device challenge: the activated credential (when one is sealed) and a quote. */
  async answer(challenge: DeviceChallenge): Promise<DeviceChallengeResponse> {
    if (challenge.nonce.length === 0) {
      throw new KeyportError('INTERNAL', 'The cluster sent a device challenge without a nonce.');
    }
    const activatedSecret =
      challenge.credentialBlob.length > 0
        ? await this.tpm.activateCredential(challenge.credentialBlob, challenge.encryptedSecret)
        : new Uint8Array();
    const quote = await this.tpm.quote(challenge.nonce);
    return {
      activatedSecret: Buffer.from(activatedSecret),
      quote: { attest: Buffer.from(quote.attest), signature: Buffer.from(quote.signature) },
    };
  }

  close(): Promise<void> {
    return this.tpm.close();
  }
}
