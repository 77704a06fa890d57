// The CTAP 2.1 authenticator API of the soft key (CTAP 2.1 §6): getInfo, makeCredential, getAssertion,
// getNextAssertion, clientPIN (PIN/UV auth protocol 2). Bytes in, bytes out; no sockets here.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { attestationSigner, uuidBytes } from './attestation-ca';
import type { AttestationSigner } from './attestation-ca';
import {
  asArray,
  asBool,
  asBytes,
  asInt,
  asMap,
  asText,
  CborError,
  decodeCanonical,
  encodeCanonical,
  equalBytes,
  UnexpectedTypeError,
} from './cbor';
import type { CborValue } from './cbor';
import { KeepaliveStatus, MAX_MESSAGE_SIZE } from './ctaphid-device';
import type { CborTransaction } from './ctaphid-device';
import { decrypt, encrypt, KeyAgreement, PIN_PROTOCOL_2, PinProtocolError, verify } from './pin-protocol';
import { MAX_PIN_RETRIES } from './state';
import type { SoftKeyState, StoredCredential } from './state';

export const CtapCommand = {
  MAKE_CREDENTIAL: 0x01,
  GET_ASSERTION: 0x02,
  GET_INFO: 0x04,
  CLIENT_PIN: 0x06,
  GET_NEXT_ASSERTION: 0x08,
  SELECTION: 0x0b,
} as const;

/** CTAP 2.1 §8.2 status codes used here. */
export const CtapStatus = {
  OK: 0x00,
  INVALID_COMMAND: 0x01,
  INVALID_PARAMETER: 0x02,
  INVALID_LENGTH: 0x03,
  CBOR_UNEXPECTED_TYPE: 0x11,
  INVALID_CBOR: 0x12,
  MISSING_PARAMETER: 0x14,
  LIMIT_EXCEEDED: 0x15,
  CREDENTIAL_EXCLUDED: 0x19,
  UNSUPPORTED_ALGORITHM: 0x26,
  OPERATION_DENIED: 0x27,
  KEY_STORE_FULL: 0x28,
  UNSUPPORTED_OPTION: 0x2b,
  INVALID_OPTION: 0x2c,
  KEEPALIVE_CANCEL: 0x2d,
  NO_CREDENTIALS: 0x2e,
  USER_ACTION_TIMEOUT: 0x2f,
  NOT_ALLOWED: 0x30,
  PIN_INVALID: 0x31,
  PIN_BLOCKED: 0x32,
  PIN_AUTH_INVALID: 0x33,
  PIN_AUTH_BLOCKED: 0x34,
  PIN_NOT_SET: 0x35,
  PUAT_REQUIRED: 0x36,
  PIN_POLICY_VIOLATION: 0x37,
  INVALID_SUBCOMMAND: 0x3e,
  UNAUTHORIZED_PERMISSION: 0x40,
  OTHER: 0x7f,
} as const;

export class CtapError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'CtapError';
  }
}

export type PresenceOutcome = 'approve' | 'deny' | 'timeout' | 'cancelled';

/** Asks the "person" to touch the key. Must resolve 'cancelled' once `signal` aborts. */
export interface PresenceSource {
  request(signal: AbortSignal): Promise<PresenceOutcome>;
}

export interface AuthenticatorOptions {
  state: SoftKeyState;
  /** Persists the state; called after every change, before the response leaves the key. */
  save: (state: SoftKeyState) => void;
  presence: PresenceSource;
  now?: () => number;
}

const ES256 = -7;
const COSE_KTY_EC2 = 2;
const COSE_CRV_P256 = 1;
const Flag = { UP: 0x01, UV: 0x04, AT: 0x40 } as const;
const Permission = { MC: 0x01, GA: 0x02, CM: 0x04, BE: 0x08, LBW: 0x10, ACFG: 0x20 } as const;
const SUPPORTED_PERMISSIONS = Permission.MC | Permission.GA;
const MIN_PIN_LENGTH = 4;
const MAX_PIN_BYTES = 63;
const MAX_CONSECUTIVE_PIN_FAILURES = 3;
const MAX_RESIDENT_CREDENTIALS = 100;
const MAX_CREDENTIALS_IN_LIST = 16;
const CREDENTIAL_ID_LENGTH = 32;
const MAX_USER_ID_LENGTH = 64;
// §6.5.2.1: a token must be used within its initial usage time limit; we also cap its whole life.
const TOKEN_INITIAL_USAGE_MS = 30_000;
const TOKEN_MAX_USAGE_MS = 10 * 60_000;
// §6.3: getNextAssertion works for 30 s after getAssertion, and only as the very next command.
const NEXT_ASSERTION_WINDOW_MS = 30_000;

interface PinUvAuthToken {
  token: Uint8Array;
  permissions: number;
  rpId: string | undefined;
  issuedAt: number;
  usedOnce: boolean;
}

interface PendingAssertions {
  credentials: StoredCredential[];
  clientDataHash: Uint8Array;
  rpId: string;
  flags: number;
  uv: boolean;
  expiresAt: number;
}

interface Verification {
  uv: boolean;
}

export class Authenticator {
  private readonly state: SoftKeyState;
  private readonly save: (state: SoftKeyState) => void;
  private readonly presence: PresenceSource;
  private readonly now: () => number;
  private readonly attestation: AttestationSigner;
  private keyAgreement = new KeyAgreement();
  private pinToken: PinUvAuthToken | undefined;
  private consecutivePinFailures = 0;
  private pendingAssertions: PendingAssertions | undefined;

  constructor(options: AuthenticatorOptions) {
    this.state = options.state;
    this.save = options.save;
    this.presence = options.presence;
    this.now = options.now ?? Date.now;
    this.attestation = attestationSigner(this.state.attestation);
  }

  /** What unplugging and replugging does to volatile state (CTAP 2.1 §6.5.5.5: clears PIN_AUTH_BLOCKED). */
  powerCycle(): void {
    this.keyAgreement = new KeyAgreement();
    this.pinToken = undefined;
    this.consecutivePinFailures = 0;
    this.pendingAssertions = undefined;
  }

  /** One CTAPHID_CBOR request: command byte then CBOR parameters. Returns status byte then CBOR. */
  async handle(request: Uint8Array, tx: CborTransaction): Promise<Uint8Array> {
    const command = request[0];
    if (command !== CtapCommand.GET_NEXT_ASSERTION) this.pendingAssertions = undefined;
    try {
      const params = this.parameters(request.subarray(1));
      let response: Map<CborValue, CborValue> | undefined;
      switch (command) {
        case CtapCommand.GET_INFO:
          response = this.getInfo();
          break;
        case CtapCommand.MAKE_CREDENTIAL:
          response = await this.makeCredential(params, tx);
          break;
        case CtapCommand.GET_ASSERTION:
          response = await this.getAssertion(params, tx);
          break;
        case CtapCommand.GET_NEXT_ASSERTION:
          response = this.getNextAssertion();
          break;
        case CtapCommand.CLIENT_PIN:
          response = this.clientPin(params);
          break;
        case CtapCommand.SELECTION:
          await this.userPresence(tx);
          break;
        default:
          throw new CtapError(
            CtapStatus.INVALID_COMMAND,
            `unknown CTAP command 0x${(command ?? 0).toString(16)}`,
          );
      }
      if (!response) return Uint8Array.of(CtapStatus.OK);
      const body = encodeCanonical(response);
      const out = new Uint8Array(1 + body.length);
      out.set(body, 1);
      return out;
    } catch (err) {
      if (err instanceof CtapError) return Uint8Array.of(err.status);
      if (err instanceof CborError) return Uint8Array.of(CtapStatus.INVALID_CBOR);
      if (err instanceof UnexpectedTypeError) return Uint8Array.of(CtapStatus.CBOR_UNEXPECTED_TYPE);
      throw err;
    }
  }

  private parameters(body: Uint8Array): Map<CborValue, CborValue> {
    if (body.length === 0) return new Map();
    const value = decodeCanonical(body);
    if (!(value instanceof Map)) throw new UnexpectedTypeError('the parameters map');
    return value;
  }

  // --- authenticatorGetInfo (§6.4) ---

  private getInfo(): Map<CborValue, CborValue> {
    return new Map<CborValue, CborValue>([
      [0x01, ['FIDO_2_0', 'FIDO_2_1']],
      [0x02, ['credProps']],
      [0x03, uuidBytes(this.state.aaguid)],
      [
        0x04,
        new Map<CborValue, CborValue>([
          ['rk', true],
          ['up', true],
          ['clientPin', this.state.pin !== null],
          ['pinUvAuthToken', true],
          // Non-discoverable credentials without UV even when a PIN is set (second-factor use).
          ['makeCredUvNotRqd', true],
        ]),
      ],
      [0x05, MAX_MESSAGE_SIZE],
      [0x06, [PIN_PROTOCOL_2]],
      [0x07, MAX_CREDENTIALS_IN_LIST],
      [0x08, CREDENTIAL_ID_LENGTH],
      [0x09, ['usb']],
      [
        0x0a,
        [
          new Map<CborValue, CborValue>([
            ['alg', ES256],
            ['type', 'public-key'],
          ]),
        ],
      ],
      [0x0d, MIN_PIN_LENGTH],
      [0x0e, 1],
    ]);
  }

  // --- authenticatorMakeCredential (§6.1.2) ---

  private async makeCredential(
    params: Map<CborValue, CborValue>,
    tx: CborTransaction,
  ): Promise<Map<CborValue, CborValue>> {
    const pinUvAuthParam = optional(params, 0x08, asBytes, 'pinUvAuthParam');
    await this.zeroLengthPinUvAuthParam(pinUvAuthParam, tx);
    const pinUvAuthProtocol = this.checkPinUvAuthProtocol(pinUvAuthParam, params.get(0x09));

    const clientDataHash = required(params, 0x01, asBytes, 'clientDataHash');
    const rp = required(params, 0x02, asMap, 'rp');
    const rpId = required(rp, 'id', asText, 'rp.id');
    const user = required(params, 0x03, asMap, 'user');
    const userId = required(user, 'id', asBytes, 'user.id');
    if (userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) {
      throw new CtapError(CtapStatus.INVALID_PARAMETER, 'user.id must be 1 to 64 bytes');
    }
    const userName = optional(user, 'name', asText, 'user.name');
    const userDisplayName = optional(user, 'displayName', asText, 'user.displayName');
    const pubKeyCredParams = required(params, 0x04, asArray, 'pubKeyCredParams');
    const excludeList = optional(params, 0x05, asArray, 'excludeList') ?? [];
    optional(params, 0x06, asMap, 'extensions'); // credProps is answered by the client (WebAuthn §10.1.3)
    const options = optional(params, 0x07, asMap, 'options') ?? new Map();
    if (params.has(0x0a))
      throw new CtapError(CtapStatus.INVALID_PARAMETER, 'enterprise attestation is not supported');

    let es256 = false;
    for (const item of pubKeyCredParams) {
      const p = asMap(item, 'pubKeyCredParams[]');
      const alg = required(p, 'alg', asInt, 'pubKeyCredParams[].alg');
      const type = required(p, 'type', asText, 'pubKeyCredParams[].type');
      if (type === 'public-key' && alg === ES256) es256 = true;
    }
    if (!es256) throw new CtapError(CtapStatus.UNSUPPORTED_ALGORITHM, 'only ES256 (-7) is supported');

    const rk = optional(options, 'rk', asBool, 'options.rk') ?? false;
    if (optional(options, 'up', asBool, 'options.up') === false) {
      throw new CtapError(CtapStatus.INVALID_OPTION, 'makeCredential always tests user presence');
    }
    // §6.1.2 step 5: with a pinUvAuthParam the uv option is ignored; otherwise it asks for built-in UV,
    // which this key does not have.
    if (!pinUvAuthParam && optional(options, 'uv', asBool, 'options.uv') === true) {
      throw new CtapError(CtapStatus.INVALID_OPTION, 'no built-in user verification; use the PIN');
    }
    if (this.state.pin && !pinUvAuthParam && rk) {
      throw new CtapError(CtapStatus.PUAT_REQUIRED, 'a discoverable credential needs the PIN');
    }

    const verification: Verification = { uv: false };
    if (pinUvAuthParam && pinUvAuthProtocol !== undefined) {
      this.checkToken(pinUvAuthParam, clientDataHash, Permission.MC, rpId);
      verification.uv = true;
    }

    for (const item of excludeList) {
      const id = descriptorId(item, 'excludeList[]');
      if (id && this.findCredential(id, rpId)) {
        await this.userPresence(tx);
        throw new CtapError(CtapStatus.CREDENTIAL_EXCLUDED, 'a credential in excludeList is on this key');
      }
    }

    await this.userPresence(tx);
    this.afterUserInteraction(verification);

    if (rk) {
      const residents = this.state.credentials.filter((c) => c.rk).length;
      if (residents >= MAX_RESIDENT_CREDENTIALS)
        throw new CtapError(CtapStatus.KEY_STORE_FULL, 'key store full');
    }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const credentialId = new Uint8Array(randomBytes(CREDENTIAL_ID_LENGTH));
    const credential: StoredCredential = {
      id: b64url(credentialId),
      rpId,
      rk,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      createdAt: new Date(this.now()).toISOString(),
    };
    if (rk) {
      credential.userId = b64url(userId);
      if (userName !== undefined) credential.userName = userName;
      if (userDisplayName !== undefined) credential.userDisplayName = userDisplayName;
      // §6.1.2 step 17: a new discoverable credential replaces the one for the same RP and user handle.
      this.state.credentials = this.state.credentials.filter(
        (c) => !(c.rk && c.rpId === rpId && c.userId === credential.userId),
      );
    }
    this.state.credentials.push(credential);
    const signCount = this.nextSignCount();
    this.save(this.state);

    const flags = Flag.UP | Flag.AT | (verification.uv ? Flag.UV : 0);
    const authData = concat(
      sha256(rpId),
      Uint8Array.of(flags),
      uint32(signCount),
      uuidBytes(this.state.aaguid),
      uint16(credentialId.length),
      credentialId,
      encodeCanonical(coseKeyOf(privateKey)),
    );
    const sig = this.attestation.sign(concat(authData, clientDataHash));
    return new Map<CborValue, CborValue>([
      [0x01, 'packed'],
      [0x02, authData],
      [
        0x03,
        new Map<CborValue, CborValue>([
          ['alg', ES256],
          ['sig', sig],
          ['x5c', this.attestation.x5c],
        ]),
      ],
    ]);
  }

  // --- authenticatorGetAssertion (§6.2.2) and authenticatorGetNextAssertion (§6.3) ---

  private async getAssertion(
    params: Map<CborValue, CborValue>,
    tx: CborTransaction,
  ): Promise<Map<CborValue, CborValue>> {
    const pinUvAuthParam = optional(params, 0x06, asBytes, 'pinUvAuthParam');
    await this.zeroLengthPinUvAuthParam(pinUvAuthParam, tx);
    const pinUvAuthProtocol = this.checkPinUvAuthProtocol(pinUvAuthParam, params.get(0x07));

    const rpId = required(params, 0x01, asText, 'rpId');
    const clientDataHash = required(params, 0x02, asBytes, 'clientDataHash');
    const allowList = optional(params, 0x03, asArray, 'allowList') ?? [];
    optional(params, 0x04, asMap, 'extensions');
    const options = optional(params, 0x05, asMap, 'options') ?? new Map();
    if (options.has('rk'))
      throw new CtapError(CtapStatus.UNSUPPORTED_OPTION, 'rk is not a getAssertion option');
    const up = optional(options, 'up', asBool, 'options.up') ?? true;
    if (!pinUvAuthParam && optional(options, 'uv', asBool, 'options.uv') === true) {
      throw new CtapError(CtapStatus.INVALID_OPTION, 'no built-in user verification; use the PIN');
    }

    const verification: Verification = { uv: false };
    if (pinUvAuthParam && pinUvAuthProtocol !== undefined) {
      this.checkToken(pinUvAuthParam, clientDataHash, Permission.GA, rpId);
      verification.uv = true;
    }

    let credentials: StoredCredential[];
    if (allowList.length > 0) {
      credentials = [];
      for (const item of allowList) {
        const id = descriptorId(item, 'allowList[]');
        const found = id && this.findCredential(id, rpId);
        if (found && !credentials.includes(found)) credentials.push(found);
      }
      credentials = credentials.slice(0, 1);
    } else {
      credentials = this.state.credentials
        .filter((c) => c.rk && c.rpId === rpId)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    }
    const first = credentials[0];
    if (!first) throw new CtapError(CtapStatus.NO_CREDENTIALS, `no credential for ${rpId}`);

    if (up) {
      await this.userPresence(tx);
      this.afterUserInteraction(verification);
    }
    const flags = (up ? Flag.UP : 0) | (verification.uv ? Flag.UV : 0);
    const response = this.assertion(first, rpId, clientDataHash, flags, verification.uv);
    if (credentials.length > 1) {
      response.set(0x05, credentials.length);
      this.pendingAssertions = {
        credentials: credentials.slice(1),
        clientDataHash,
        rpId,
        flags,
        uv: verification.uv,
        expiresAt: this.now() + NEXT_ASSERTION_WINDOW_MS,
      };
    }
    return response;
  }

  private getNextAssertion(): Map<CborValue, CborValue> {
    const pending = this.pendingAssertions;
    if (!pending || this.now() > pending.expiresAt) {
      this.pendingAssertions = undefined;
      throw new CtapError(CtapStatus.NOT_ALLOWED, 'no getAssertion to continue');
    }
    const next = pending.credentials.shift();
    if (!next) {
      this.pendingAssertions = undefined;
      throw new CtapError(CtapStatus.NOT_ALLOWED, 'no more credentials');
    }
    pending.expiresAt = this.now() + NEXT_ASSERTION_WINDOW_MS;
    return this.assertion(next, pending.rpId, pending.clientDataHash, pending.flags, pending.uv);
  }

  private assertion(
    credential: StoredCredential,
    rpId: string,
    clientDataHash: Uint8Array,
    flags: number,
    uv: boolean,
  ): Map<CborValue, CborValue> {
    const signCount = this.nextSignCount();
    this.save(this.state);
    const authData = concat(sha256(rpId), Uint8Array.of(flags), uint32(signCount));
    const key: KeyObject = createPrivateKey(credential.privateKeyPem);
    const signature = new Uint8Array(sign('sha256', concat(authData, clientDataHash), key));
    const response = new Map<CborValue, CborValue>([
      [
        0x01,
        new Map<CborValue, CborValue>([
          ['id', fromB64url(credential.id)],
          ['type', 'public-key'],
        ]),
      ],
      [0x02, authData],
      [0x03, signature],
    ]);
    if (credential.rk && credential.userId !== undefined) {
      const user = new Map<CborValue, CborValue>([['id', fromB64url(credential.userId)]]);
      // §6.2.2: identifiable user information only after user verification.
      if (uv && credential.userName !== undefined) user.set('name', credential.userName);
      if (uv && credential.userDisplayName !== undefined) user.set('displayName', credential.userDisplayName);
      response.set(0x04, user);
    }
    return response;
  }

  // --- authenticatorClientPIN (§6.5.5), protocol 2 only ---

  private clientPin(params: Map<CborValue, CborValue>): Map<CborValue, CborValue> | undefined {
    const subCommand = required(params, 0x02, asInt, 'subCommand');
    const protocol = optional(params, 0x01, asInt, 'pinUvAuthProtocol');
    if (subCommand === 0x01) {
      return new Map<CborValue, CborValue>([
        [0x03, this.state.pin?.retries ?? MAX_PIN_RETRIES],
        [0x04, this.consecutivePinFailures >= MAX_CONSECUTIVE_PIN_FAILURES],
      ]);
    }
    if (protocol === undefined)
      throw new CtapError(CtapStatus.MISSING_PARAMETER, 'pinUvAuthProtocol is required');
    if (protocol !== PIN_PROTOCOL_2) throw new CtapError(CtapStatus.INVALID_PARAMETER, 'only PIN protocol 2');
    switch (subCommand) {
      case 0x02:
        return new Map<CborValue, CborValue>([[0x01, this.keyAgreement.coseKey()]]);
      case 0x03:
        this.setPin(params);
        return undefined;
      case 0x05:
        if (params.has(0x09) || params.has(0x0a)) {
          throw new CtapError(CtapStatus.INVALID_PARAMETER, 'getPinToken takes no permissions');
        }
        return this.getPinUvAuthToken(params, Permission.MC | Permission.GA, undefined);
      case 0x09: {
        const permissions = required(params, 0x09, asInt, 'permissions');
        const rpId = optional(params, 0x0a, asText, 'rpId');
        if (permissions === 0) throw new CtapError(CtapStatus.INVALID_PARAMETER, 'permissions must not be 0');
        if (permissions & ~SUPPORTED_PERMISSIONS) {
          throw new CtapError(CtapStatus.UNAUTHORIZED_PERMISSION, 'only mc and ga permissions are supported');
        }
        return this.getPinUvAuthToken(params, permissions, rpId);
      }
      default:
        throw new CtapError(
          CtapStatus.INVALID_SUBCOMMAND,
          `clientPIN subcommand ${subCommand} is not supported`,
        );
    }
  }

  private setPin(params: Map<CborValue, CborValue>): void {
    const keyAgreement = required(params, 0x03, asMap, 'keyAgreement');
    const pinUvAuthParam = required(params, 0x04, asBytes, 'pinUvAuthParam');
    const newPinEnc = required(params, 0x05, asBytes, 'newPinEnc');
    if (this.state.pin) throw new CtapError(CtapStatus.NOT_ALLOWED, 'a PIN is already set; use changePIN');
    const shared = this.decapsulate(keyAgreement);
    if (!verify(shared, newPinEnc, pinUvAuthParam)) {
      throw new CtapError(CtapStatus.PIN_AUTH_INVALID, 'pinUvAuthParam does not match newPinEnc');
    }
    const padded = this.decryptOrInvalid(shared, newPinEnc);
    if (padded.length !== 64)
      throw new CtapError(CtapStatus.INVALID_PARAMETER, 'paddedNewPin must be 64 bytes');
    let end = padded.length;
    while (end > 0 && padded[end - 1] === 0) end--;
    const pin = padded.subarray(0, end);
    const codePoints = [...Buffer.from(pin).toString('utf8')].length;
    if (codePoints < MIN_PIN_LENGTH || pin.length > MAX_PIN_BYTES) {
      throw new CtapError(CtapStatus.PIN_POLICY_VIOLATION, `a PIN has ${MIN_PIN_LENGTH} to 63 bytes`);
    }
    this.state.pin = { hash: pinHashHex(pin), retries: MAX_PIN_RETRIES };
    this.save(this.state);
  }

  private getPinUvAuthToken(
    params: Map<CborValue, CborValue>,
    permissions: number,
    rpId: string | undefined,
  ): Map<CborValue, CborValue> {
    const keyAgreement = required(params, 0x03, asMap, 'keyAgreement');
    const pinHashEnc = required(params, 0x06, asBytes, 'pinHashEnc');
    const pin = this.state.pin;
    if (!pin) throw new CtapError(CtapStatus.PIN_NOT_SET, 'no PIN is set');
    if (pin.retries === 0) throw new CtapError(CtapStatus.PIN_BLOCKED, 'the PIN is blocked; reset the key');
    if (this.consecutivePinFailures >= MAX_CONSECUTIVE_PIN_FAILURES) {
      throw new CtapError(
        CtapStatus.PIN_AUTH_BLOCKED,
        'three wrong PINs in a row: unplug and replug the key',
      );
    }
    const shared = this.decapsulate(keyAgreement);
    // §6.5.5.7.2: the counter goes down before the comparison, so a power cut cannot save a guess.
    pin.retries -= 1;
    this.save(this.state);
    const given = this.decryptOrInvalid(shared, pinHashEnc);
    if (given.length !== 16 || !equalBytes(given, Buffer.from(pin.hash, 'hex'))) {
      this.keyAgreement.regenerate();
      this.consecutivePinFailures += 1;
      if (pin.retries === 0) throw new CtapError(CtapStatus.PIN_BLOCKED, 'the PIN is blocked');
      if (this.consecutivePinFailures >= MAX_CONSECUTIVE_PIN_FAILURES) {
        throw new CtapError(
          CtapStatus.PIN_AUTH_BLOCKED,
          'three wrong PINs in a row: unplug and replug the key',
        );
      }
      throw new CtapError(CtapStatus.PIN_INVALID, `wrong PIN, ${pin.retries} retries left`);
    }
    pin.retries = MAX_PIN_RETRIES;
    this.consecutivePinFailures = 0;
    this.save(this.state);
    const token = new Uint8Array(randomBytes(32));
    this.pinToken = { token, permissions, rpId, issuedAt: this.now(), usedOnce: false };
    return new Map<CborValue, CborValue>([[0x02, encrypt(shared, token)]]);
  }

  // --- shared steps ---

  /** §6.1.2 / §6.2.2 step 1: an empty pinUvAuthParam asks "touch to pick this key", then reports PIN state. */
  private async zeroLengthPinUvAuthParam(param: Uint8Array | undefined, tx: CborTransaction): Promise<void> {
    if (!param || param.length !== 0) return;
    await this.userPresence(tx);
    throw this.state.pin
      ? new CtapError(CtapStatus.PIN_INVALID, 'selected; a PIN is set')
      : new CtapError(CtapStatus.PIN_NOT_SET, 'selected; no PIN is set');
  }

  private checkPinUvAuthProtocol(
    param: Uint8Array | undefined,
    protocol: CborValue | undefined,
  ): number | undefined {
    if (!param) return undefined;
    if (protocol === undefined)
      throw new CtapError(CtapStatus.MISSING_PARAMETER, 'pinUvAuthProtocol is required');
    if (asInt(protocol, 'pinUvAuthProtocol') !== PIN_PROTOCOL_2) {
      throw new CtapError(CtapStatus.INVALID_PARAMETER, 'only PIN protocol 2 is supported');
    }
    return PIN_PROTOCOL_2;
  }

  /** §6.5.5.7 / §6.1.2 step 11: the token must verify, carry the permission and match the RP. */
  private checkToken(param: Uint8Array, clientDataHash: Uint8Array, permission: number, rpId: string): void {
    const t = this.pinToken;
    const now = this.now();
    const expired =
      !t ||
      now - t.issuedAt > TOKEN_MAX_USAGE_MS ||
      (!t.usedOnce && now - t.issuedAt > TOKEN_INITIAL_USAGE_MS);
    if (!t || expired || !verify(t.token, clientDataHash, param)) {
      throw new CtapError(CtapStatus.PIN_AUTH_INVALID, 'pinUvAuthParam does not verify');
    }
    if (!(t.permissions & permission)) {
      throw new CtapError(CtapStatus.PIN_AUTH_INVALID, 'the pinUvAuthToken lacks the permission');
    }
    if (t.rpId !== undefined && t.rpId !== rpId) {
      throw new CtapError(CtapStatus.PIN_AUTH_INVALID, 'the pinUvAuthToken is for another RP');
    }
    t.rpId = rpId;
    t.usedOnce = true;
  }

  /**
   * §6.1.2 / §6.2.2: once user presence was collected for an operation that used the token, the token
   * keeps only lbw (which this key does not grant), so it cannot silently authorise a second operation.
   */
  private afterUserInteraction(verification: Verification): void {
    if (verification.uv && this.pinToken) this.pinToken.permissions &= Permission.LBW;
  }

  private async userPresence(tx: CborTransaction): Promise<void> {
    if (tx.signal.aborted) throw new CtapError(CtapStatus.KEEPALIVE_CANCEL, 'cancelled');
    tx.setStatus(KeepaliveStatus.UP_NEEDED);
    const outcome = await this.presence.request(tx.signal);
    tx.setStatus(KeepaliveStatus.PROCESSING);
    switch (outcome) {
      case 'approve':
        return;
      case 'deny':
        throw new CtapError(CtapStatus.OPERATION_DENIED, 'the person declined');
      case 'timeout':
        throw new CtapError(CtapStatus.USER_ACTION_TIMEOUT, 'nobody touched the key');
      case 'cancelled':
        throw new CtapError(CtapStatus.KEEPALIVE_CANCEL, 'cancelled by the client');
    }
  }

  private decapsulate(peer: Map<CborValue, CborValue>): Uint8Array {
    try {
      return this.keyAgreement.decapsulate(peer);
    } catch (err) {
      if (err instanceof PinProtocolError) throw new CtapError(CtapStatus.INVALID_PARAMETER, err.message);
      throw err;
    }
  }

  private decryptOrInvalid(shared: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    try {
      return decrypt(shared, ciphertext);
    } catch (err) {
      if (err instanceof PinProtocolError) throw new CtapError(CtapStatus.INVALID_PARAMETER, err.message);
      throw err;
    }
  }

  private findCredential(id: Uint8Array, rpId: string): StoredCredential | undefined {
    const encoded = b64url(id);
    return this.state.credentials.find((c) => c.id === encoded && c.rpId === rpId);
  }

  private nextSignCount(): number {
    this.state.signCount = (this.state.signCount + 1) >>> 0;
    return this.state.signCount;
  }
}

function required<T>(
  map: Map<CborValue, CborValue>,
  key: CborValue,
  as: (v: CborValue | undefined, what: string) => T,
  what: string,
): T {
  if (!map.has(key)) throw new CtapError(CtapStatus.MISSING_PARAMETER, `${what} is missing`);
  return as(map.get(key), what);
}

function optional<T>(
  map: Map<CborValue, CborValue>,
  key: CborValue,
  as: (v: CborValue | undefined, what: string) => T,
  what: string,
): T | undefined {
  return map.has(key) ? as(map.get(key), what) : undefined;
}

/** A PublicKeyCredentialDescriptor's id, or undefined when its type is not "public-key" (ignored, §6.1.2). */
function descriptorId(item: CborValue, what: string): Uint8Array | undefined {
  const d = asMap(item, what);
  const type = required(d, 'type', asText, `${what}.type`);
  const id = required(d, 'id', asBytes, `${what}.id`);
  return type === 'public-key' ? id : undefined;
}

function coseKeyOf(privateKey: KeyObject): Map<CborValue, CborValue> {
  const jwk = privateKey.export({ format: 'jwk' });
  return new Map<CborValue, CborValue>([
    [1, COSE_KTY_EC2],
    [3, ES256],
    [-1, COSE_CRV_P256],
    [-2, fromB64url(jwk.x ?? '')],
    [-3, fromB64url(jwk.y ?? '')],
  ]);
}

function pinHashHex(pin: Uint8Array): string {
  return createHash('sha256').update(pin).digest().subarray(0, 16).toString('hex');
}

function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(text, 'utf8').digest());
}

function uint32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function uint16(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function fromB64url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64url'));
}
