// What device trust keeps in a challenge between its two steps (auth/challenges.ts stores and checks it):
// for enrollment, the device's keys and a hash of the sealed secret; for authentication, the credential and
// the nonce. Plain schemas, so the challenges module depends on nothing else of device trust.
import { z } from 'zod';

const b64 = z.string().min(1).max(8192);

/** What enrollment's second step needs, kept in the challenge payload. */
export const enrollPayloadSchema = z.object({
  kind: z.literal('enroll'),
  deviceId: z.string().min(1),
  credentialId: z.string().min(1),
  akPublic: b64,
  ekFingerprint: z.string().min(1),
  ekCertificatePem: z.string().nullable(),
  /** SHA-256 of the sealed secret, base64: the secret itself is never stored. */
  secretHash: b64,
  nonce: b64,
  /** The enrollment token's hash, spent when enrollment completes; absent for self- and auto-enrollment. */
  tokenHash: z.string().optional(),
  /** Self-enrollment of a device not in the inventory yet: registered when enrollment completes. */
  register: z.object({ assetTag: z.string().min(1), osType: z.string().min(1) }).optional(),
});
export type EnrollPayload = z.infer<typeof enrollPayloadSchema>;

/** What device authentication's answer is checked against. */
export const authPayloadSchema = z.object({
  kind: z.literal('auth'),
  deviceId: z.string().min(1),
  credentialId: z.string().min(1),
  nonce: b64,
});
export type AuthPayload = z.infer<typeof authPayloadSchema>;

/**
 * A device's approval of a web session (auth/web-approval.ts): the nonce, and the request and web token
 * (its hash) the quote must be bound to.
 */
export const webApprovalPayloadSchema = z.object({
  approvalId: z.string().min(1),
  deviceId: z.string().min(1),
  credentialId: z.string().min(1),
  nonce: b64,
  tokenHash: z.string().min(1),
});
export type WebApprovalPayload = z.infer<typeof webApprovalPayloadSchema>;

export const devicePayloadSchema = z.discriminatedUnion('kind', [enrollPayloadSchema, authPayloadSchema]);
export type DevicePayload = z.infer<typeof devicePayloadSchema>;
