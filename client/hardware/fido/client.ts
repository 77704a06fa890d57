// A small CTAP2 client over one CtaphidDevice: each method is one CTAP2 exchange (or the few a PIN
// operation needs), built and parsed by ctap2.ts, with PIN/UV auth protocol 2.
import type { CtaphidDevice, TransactionOptions } from './device';
import {
  credPropsOutput,
  Ctap2Error,
  getAssertionRequest,
  getInfoRequest,
  getKeyAgreementRequest,
  getNextAssertionRequest,
  getPinRetriesRequest,
  getPinUvAuthTokenUsingPinWithPermissionsRequest,
  makeCredentialRequest,
  option,
  parseEmptyResponse,
  parseGetAssertionResponse,
  parseGetInfoResponse,
  parseKeyAgreementResponse,
  parseMakeCredentialResponse,
  parsePinRetriesResponse,
  parsePinTokenResponse,
  PIN_PERMISSION,
  setPinRequest,
  wrongPinError,
} from './ctap2';
import type {
  AssertionResponse,
  AuthenticatorInfo,
  Ctap2Request,
  GetAssertionRequest,
  MakeCredentialRequest,
  MakeCredentialResponse,
} from './ctap2';
import {
  authenticate,
  decrypt,
  encapsulate,
  PIN_UV_AUTH_PROTOCOL_2,
  PinProtocolError,
  pinHashEnc,
  setPinParams,
} from './pin-protocol-2';
import type { Encapsulation } from './pin-protocol-2';

export type CallOptions = TransactionOptions;

/**
 * How long the PIN retries asked ahead (preparePin) stay the ones to show. The key-agreement is never
 * asked ahead: the key regenerates it after any wrong PIN (anyone's), and a PIN sent under a stale one
 * spends an attempt (CTAP 2.1 §6.5.5.7.2 decrements first), so it is asked right before the PIN is sent.
 */
export const PREPARED_PIN_MAX_AGE_MS = 1000;

export type PinPermission = 'mc' | 'ga';

export interface MakeCredentialInput extends Omit<
  MakeCredentialRequest,
  'pinUvAuthParam' | 'pinUvAuthProtocol'
> {
  /** From getPinToken(pin, ['mc']); the client computes pinUvAuthParam from it. */
  pinUvAuthToken?: Uint8Array;
  /** Ask for the credProps client extension output. */
  credProps?: boolean;
}

export interface MakeCredentialResult extends MakeCredentialResponse {
  clientExtensionResults: { credProps?: { rk: boolean } };
}

export interface GetAssertionInput extends Omit<GetAssertionRequest, 'pinUvAuthParam' | 'pinUvAuthProtocol'> {
  pinUvAuthToken?: Uint8Array;
}

export class Fido2Client {
  #info: AuthenticatorInfo | undefined;
  /** From preparePin: taken once (retries by takePreparedPinRetries, agreement by getPinToken). */
  #prepared: { retries?: number; atMs: number } | undefined;

  constructor(readonly device: CtaphidDevice) {}

  async #call(request: Ctap2Request, options: CallOptions): Promise<Uint8Array> {
    return this.device.cbor(request.command, request.params, options);
  }

  /** authenticatorGetInfo, cached after the first call. */
  async getInfo(options: CallOptions = {}): Promise<AuthenticatorInfo> {
    this.#info ??= parseGetInfoResponse(await this.#call(getInfoRequest(), options));
    return this.#info;
  }

  async makeCredential(input: MakeCredentialInput, options: CallOptions = {}): Promise<MakeCredentialResult> {
    const { pinUvAuthToken, credProps, ...request } = input;
    const auth = pinUvAuthToken ? this.#pinUvAuth(pinUvAuthToken, request.clientDataHash) : {};
    const response = parseMakeCredentialResponse(
      await this.#call(makeCredentialRequest({ ...request, ...auth }), options),
    );
    return {
      ...response,
      clientExtensionResults: credProps ? { credProps: credPropsOutput(request) } : {},
    };
  }

  /**
   * authenticatorGetAssertion, then authenticatorGetNextAssertion for each further credential
   * (CTAP 2.1 §6.3), so the caller sees every account the key holds for the RP.
   */
  async getAssertion(input: GetAssertionInput, options: CallOptions = {}): Promise<AssertionResponse[]> {
    const { pinUvAuthToken, ...request } = input;
    const auth = pinUvAuthToken ? this.#pinUvAuth(pinUvAuthToken, request.clientDataHash) : {};
    const first = parseGetAssertionResponse(
      await this.#call(getAssertionRequest({ ...request, ...auth }), options),
    );
    // CTAP 2.1 §6.2.2: the key may omit the credential when the allowList held exactly one.
    const only = request.allowList?.length === 1 ? request.allowList[0] : undefined;
    if (!first.credential && only) first.credential = only;
    if (!first.credential) {
      throw new Ctap2Error(
        'INVALID_RESPONSE',
        'The security key did not say which credential it used. Try again.',
      );
    }
    const assertions = [first];
    const count = first.numberOfCredentials ?? 1;
    for (let i = 1; i < count; i++) {
      assertions.push(parseGetAssertionResponse(await this.#call(getNextAssertionRequest(), options)));
    }
    return assertions;
  }

  /**
   * getPinRetries asked ahead, while something else is in flight (a passwordless login's first call): it
   * changes nothing on the key. The next PIN prompt takes it (takePreparedPinRetries), once and only
   * within PREPARED_PIN_MAX_AGE_MS.
   */
  async preparePin(options: CallOptions = {}): Promise<void> {
    this.#prepared = undefined;
    const retries = await this.getPinRetries(options);
    this.#prepared = { retries, atMs: performance.now() };
  }

  /** The retries preparePin read, if fresh; undefined: ask getPinRetries. */
  takePreparedPinRetries(): number | undefined {
    const prepared = this.#fresh();
    const retries = prepared?.retries;
    if (prepared) prepared.retries = undefined;
    return retries;
  }

  #fresh() {
    const prepared = this.#prepared;
    if (prepared && performance.now() - prepared.atMs <= PREPARED_PIN_MAX_AGE_MS) return prepared;
    this.#prepared = undefined;
    return undefined;
  }

  async getPinRetries(options: CallOptions = {}): Promise<number> {
    await this.#requireProtocol2(options);
    return parsePinRetriesResponse(await this.#call(getPinRetriesRequest(PIN_UV_AUTH_PROTOCOL_2), options))
      .retries;
  }

  /**
   * getPinUvAuthTokenUsingPinWithPermissions: a token for makeCredential ('mc') and/or getAssertion
   * ('ga'), bound to `rpId` when given. A wrong PIN rejects with Ctap2Error PIN_INVALID; call
   * getPinRetries to show what is left.
   */
  async getPinToken(
    pin: string,
    permissions: PinPermission[],
    rpId?: string,
    options: CallOptions = {},
  ): Promise<Uint8Array> {
    const shared = await this.#keyAgreement(options);
    const bits = permissions.reduce(
      (acc, p) => acc | (p === 'mc' ? PIN_PERMISSION.MC : PIN_PERMISSION.GA),
      0,
    );
    let encrypted: Uint8Array;
    try {
      encrypted = parsePinTokenResponse(
        await this.#call(
          getPinUvAuthTokenUsingPinWithPermissionsRequest({
            protocol: PIN_UV_AUTH_PROTOCOL_2,
            keyAgreement: shared.keyAgreement,
            pinHashEnc: pinHashEnc(shared.sharedSecret, pin),
            permissions: bits,
            rpId,
          }),
          options,
        ),
      );
    } catch (error) {
      // CTAP 2.1 §6.5.5.7.2: a wrong PIN; say how many attempts are left (one more exchange).
      if (error instanceof Ctap2Error && error.code === 'PIN_INVALID' && error.retries === undefined) {
        const retries = await this.getPinRetries(options).catch(() => undefined);
        if (retries !== undefined) throw wrongPinError(retries, error.status);
      }
      throw error;
    }
    let token: Uint8Array;
    try {
      token = decrypt(shared.sharedSecret, encrypted);
    } catch (error) {
      if (!(error instanceof PinProtocolError)) throw error;
      throw new Ctap2Error('INVALID_RESPONSE', 'The security key sent an unreadable PIN token. Try again.');
    }
    // Protocol 2 tokens are 32 bytes (CTAP 2.1 §6.5.7); authenticate() relies on it.
    if (token.length !== 32) {
      throw new Ctap2Error(
        'INVALID_RESPONSE',
        'The security key sent a PIN token of the wrong size. Try again.',
      );
    }
    return token;
  }

  /**
   * Waits for a touch without creating anything: authenticatorMakeCredential with a zero-length
   * pinUvAuthParam (CTAP 2.1 §6.1.2 step 1), which a key answers after user presence with PIN_NOT_SET
   * or PIN_INVALID. This is how a platform picks one of several keys before asking for a PIN (libfido2
   * fido_dev_get_touch_begin does the same). Resolves with whether the key has a PIN.
   */
  async selectByTouch(options: CallOptions = {}): Promise<{ pinSet: boolean }> {
    const request = makeCredentialRequest({
      clientDataHash: new Uint8Array(32),
      rp: { id: '.dummy' },
      user: { id: new Uint8Array([0x01]), name: 'dummy' },
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
      pinUvAuthParam: new Uint8Array(0),
      pinUvAuthProtocol: PIN_UV_AUTH_PROTOCOL_2,
    });
    try {
      parseMakeCredentialResponse(await this.#call(request, options));
    } catch (error) {
      if (error instanceof Ctap2Error && error.code === 'PIN_NOT_SET') return { pinSet: false };
      if (error instanceof Ctap2Error && (error.code === 'PIN_INVALID' || error.code === 'PIN_AUTH_INVALID'))
        return { pinSet: true };
      throw error;
    }
    // A CTAP 2.0 key may have made a throw-away credential; it was touched all the same.
    return { pinSet: option(await this.getInfo(options), 'clientPin') === true };
  }

  /** Forgets the cached getInfo (its options change when a PIN is set). */
  invalidateInfo(): void {
    this.#info = undefined;
  }

  /** setPIN, for a key that has none yet (CTAP 2.1 §6.5). */
  async setPin(pin: string, options: CallOptions = {}): Promise<void> {
    this.#prepared = undefined;
    const info = await this.getInfo(options);
    const shared = await this.#keyAgreement(options);
    const { newPinEnc, pinUvAuthParam } = setPinParams(shared.sharedSecret, pin, info.minPinLength ?? 4);
    parseEmptyResponse(
      await this.#call(
        setPinRequest({
          protocol: PIN_UV_AUTH_PROTOCOL_2,
          keyAgreement: shared.keyAgreement,
          newPinEnc,
          pinUvAuthParam,
        }),
        options,
      ),
    );
    // getInfo's clientPin option is now true.
    this.#info = undefined;
  }

  #pinUvAuth(token: Uint8Array, clientDataHash: Uint8Array) {
    return { pinUvAuthParam: authenticate(token, clientDataHash), pinUvAuthProtocol: PIN_UV_AUTH_PROTOCOL_2 };
  }

  async #requireProtocol2(options: CallOptions): Promise<void> {
    const info = await this.getInfo(options);
    if (!info.pinUvAuthProtocols.includes(PIN_UV_AUTH_PROTOCOL_2))
      throw new Ctap2Error('UNSUPPORTED_PIN_PROTOCOL');
  }

  async #keyAgreement(options: CallOptions): Promise<Encapsulation> {
    await this.#requireProtocol2(options);
    const key = parseKeyAgreementResponse(
      await this.#call(getKeyAgreementRequest(PIN_UV_AUTH_PROTOCOL_2), options),
    );
    try {
      return encapsulate(key);
    } catch (error) {
      if (!(error instanceof PinProtocolError)) throw error;
      throw new Ctap2Error(
        'INVALID_RESPONSE',
        'The security key sent an unusable key-agreement key. Try again.',
      );
    }
  }
}
