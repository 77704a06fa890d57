// A PIV session on one card: the reader chosen once, the applet SELECTed once per connection, the PIN
// verified once per the key's PIN policy, the management key authenticated once per connection. Each
// operation reads top to bottom as its APDUs; the bytes come from commands.ts and management-key.ts.
//
// APDUs per signature: one GENERAL AUTHENTICATE for a key whose PIN policy is "never", or "once" after
// the PIN was verified in this session; VERIFY + GENERAL AUTHENTICATE for "always" and for the first
// "once". Nothing else: no SELECT, no status query.
//
// When the card is pulled mid-operation the operation fails with CARD_REMOVED (the person is asked to
// reinsert it; `waitForCard` resolves when it is back) and the next operation connects again, checks
// that it is the same card (serial) and SELECTs again. When pcscd restarts, the operation in flight
// waits for it to come back (reconnectTimeoutMs), opens a new PC/SC context and runs again once; a PIN
// verified before is gone with the card's power, so it is asked again where the policy needs it.
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CommandApdu, ResponseApdu, StatusContext } from './apdu';
import { SW, checkStatus, exchange, statusError } from './apdu';
import type { FirmwareVersion, GeneratePolicy, Metadata, PinPolicy, PinStatus, PivSlot } from './commands';
import {
  ATTESTATION_SLOT,
  attestCommand,
  changeReferenceDataCommand,
  effectivePinPolicy,
  generateCommand,
  getDataCommand,
  getMetadataCommand,
  getSerialCommand,
  getVersionCommand,
  parseAttestation,
  parseGeneratedPublicKey,
  parseGetData,
  parseMetadata,
  parsePinStatus,
  parseSelect,
  parseSerial,
  parseSignature,
  parseVersion,
  pinStatusCommand,
  putDataCommand,
  resetRetryCounterCommand,
  selectCommand,
  signCommand,
  slotName,
  verifyPinCommand,
} from './commands';
import { PivError, malformed } from './errors';
import type { ManagementKey, ManagementKeyAlgorithm } from './management-key';
import {
  DEFAULT_MANAGEMENT_KEY_BYTES,
  MANAGEMENT_ALGORITHM_ID,
  MANAGEMENT_KEY_SLOT,
  answerWitness,
  checkCardProof,
  managementKey,
  managementKeyRejected,
  parseWitness,
  requestWitnessCommand,
} from './management-key';
import {
  ATTESTATION_CERTIFICATE_OBJECT,
  CERTIFICATE_OBJECT,
  decodeCertificateObject,
  encodeCertificateObject,
} from './objects';
import { SCARD, cardRemoved, classifyPcscCode, readerCandidates } from './pcsc';
import type { CardConnection, CardEvent } from './reader';
import { PcscClient } from './reader';

export interface PivSessionOptions {
  /** A reader's name (or a unique part of it); by default the first reader with a card. */
  reader?: string;
  /** pcscd's socket (PCSCLITE_CSOCK_NAME); by default the environment's, else pcsc-lite's own. */
  socketPath?: string;
  /** The management key; by default the factory key, in the algorithm the card says (3DES or AES-192). */
  managementKey?: ManagementKey;
  /** Send long commands as one extended APDU instead of a chain (only where reader and card take it). */
  extended?: boolean;
  /** How long an operation waits for pcscd to come back after it went away. */
  reconnectTimeoutMs?: number;
}

/** Runs of one operation after a card reset (another session's end) before its error is the answer. */
const MAX_RESET_RETRIES = 3;

/** The PIN, or a way to ask for it that is called only when the card needs it. */
export type PinSource = string | (() => Promise<string>);

export interface SignOptions {
  /** The key's PIN policy; by default what `generate` set in this session, else the slot's default. */
  pinPolicy?: PinPolicy;
  pin?: PinSource;
}

const DEFAULT_RECONNECT_TIMEOUT_MS = 10_000;
const RECONNECT_POLL_MS = 100;
/** pcscd polls readers every 400 ms; a card that left is seen by then, with room for a busy machine. */
const NO_ANSWER_SETTLE_MS = 5_000;
/** How long a new pcscd gets to find the card that was in before it went away. */
const CARD_AFTER_RESTART_MS = 5_000;

export async function openPivSession(options: PivSessionOptions = {}): Promise<PivSession> {
  const client = await PcscClient.start(
    options.socketPath === undefined ? {} : { socketPath: options.socketPath },
  );
  const session = new PivSession(client, options);
  try {
    await session.connectFirst();
  } catch (error) {
    client.close();
    throw error;
  }
  return session;
}

export class PivSession {
  /** The reader this session uses, fixed at open. */
  readerName = '';
  version: FirmwareVersion | undefined;
  /** YubiKey serial; undefined on a card without GET SERIAL. */
  serial: number | undefined;
  /** Every APDU sent, GET RESPONSE and chain parts included. */
  apduCount = 0;

  private connection: CardConnection | undefined;
  private pinVerified = false;
  private managementAuthenticated = false;
  private readonly slotPolicies = new Map<PivSlot, PinPolicy>();
  private queue: Promise<unknown> = Promise.resolve();
  private renewing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private client: PcscClient,
    private readonly options: PivSessionOptions,
  ) {
    this.watch(client);
  }

  // ---- PIN and PUK ------------------------------------------------------------------------------------

  /** Empty VERIFY: whether the PIN is verified, else the attempts left. */
  pinStatus(): Promise<PinStatus> {
    return this.run('read the PIN status', true, async () => {
      const response = await this.send(pinStatusCommand());
      const status = parsePinStatus(response);
      if (!status) throw statusError(response.sw, { operation: 'read the PIN status' });
      this.pinVerified = status.state === 'verified';
      return status;
    });
  }

  /** VERIFY: a wrong PIN is PIN_INCORRECT with the attempts left, a blocked one PIN_BLOCKED. */
  verifyPin(pin: string): Promise<void> {
    return this.run('verify the PIN', false, () => this.verify(pin));
  }

  changePin(current: string, next: string): Promise<void> {
    return this.run('change the PIN', false, async () => {
      this.expectOk(await this.send(changeReferenceDataCommand('PIN', current, next)), {
        operation: 'change the PIN',
        credential: 'PIN',
      });
      this.pinVerified = true;
    });
  }

  changePuk(current: string, next: string): Promise<void> {
    return this.run('change the PUK', false, async () => {
      this.expectOk(await this.send(changeReferenceDataCommand('PUK', current, next)), {
        operation: 'change the PUK',
        credential: 'PUK',
      });
    });
  }

  /** RESET RETRY COUNTER: a new PIN with the PUK, for a PIN that is blocked or forgotten. */
  unblockPin(puk: string, newPin: string): Promise<void> {
    return this.run('unblock the PIN', false, async () => {
      this.expectOk(await this.send(resetRetryCounterCommand(puk, newPin)), {
        operation: 'unblock the PIN',
        credential: 'PUK',
      });
    });
  }

  // ---- Keys ---------------------------------------------------------------------------------------------

  /** A new P-256 key in `slot` with the given policies; needs the management key (authenticated once). */
  generate(slot: PivSlot, policy: GeneratePolicy): Promise<KeyObject> {
    const operation = `generate a key in slot ${slotName(slot)}`;
    return this.run(operation, true, async () => {
      await this.ensureManagementKey();
      const data = this.expectOk(await this.send(generateCommand(slot, policy)), { operation });
      const key = parseGeneratedPublicKey(data);
      this.slotPolicies.set(slot, policy.pin);
      return key;
    });
  }

  /** ECDSA P-256 over a SHA-256 digest with the key in `slot`; the DER signature. */
  sign(slot: PivSlot, digest: Uint8Array, options: SignOptions = {}): Promise<Uint8Array> {
    const operation = `sign with slot ${slotName(slot)}`;
    const command = signCommand(slot, digest);
    // A card reset by another application (its session ended) fails the first APDU here, and the signature
    // runs once more on a new connection: with the PIN already given for it, not asked a second time.
    let given: Promise<string> | undefined;
    const pin: PinSource | undefined =
      options.pin === undefined || typeof options.pin === 'string'
        ? options.pin
        : () => (given ??= this.pinFrom(options.pin, operation));
    return this.run(operation, true, async () => {
      const told = options.pinPolicy ?? this.slotPolicies.get(slot) ?? 'default';
      const policy = effectivePinPolicy(slot, told);
      let verifiedNow = false;
      if (policy === 'always' || (policy === 'once' && !this.pinVerified)) {
        await this.verify(await this.pinFrom(pin, operation));
        verifiedNow = true;
      }
      let response = await this.send(command);
      // 6982 after no VERIFY: the key's PIN policy was stricter than the slot's default (or the card forgot
      // the PIN), so once more with it. A key whose policy we know to be "never" got no touch: no PIN helps.
      if (
        response.sw === SW.SECURITY_STATUS_NOT_SATISFIED &&
        !verifiedNow &&
        told !== 'never' &&
        pin !== undefined
      ) {
        await this.verify(await this.pinFrom(pin, operation));
        response = await this.send(command);
      }
      return parseSignature(this.expectOk(response, { operation }));
    });
  }

  /** GET METADATA (YubiKey 5.3+): a slot's algorithm, policies, origin and public key. */
  metadata(reference: PivSlot | typeof MANAGEMENT_KEY_SLOT | 0x80 | 0x81): Promise<Metadata> {
    const operation = `read the metadata of ${slotName(reference)}`;
    return this.run(operation, true, async () =>
      parseMetadata(this.expectOk(await this.send(getMetadataCommand(reference)), { operation })),
    );
  }

  // ---- Attestation and certificates ---------------------------------------------------------------------

  /** YubiKey ATTEST: the certificate, signed by the f9 key, for the key generated in `slot`. */
  attest(slot: PivSlot): Promise<X509Certificate> {
    const operation = `attest the key in slot ${slotName(slot)}`;
    return this.run(operation, true, async () =>
      parseAttestation(this.expectOk(await this.send(attestCommand(slot)), { operation })),
    );
  }

  /** The f9 attestation certificate (object 5FFF01): the link from ATTEST's answers to the vendor root. */
  readAttestationCertificate(): Promise<X509Certificate> {
    const operation = `read the certificate of slot ${slotName(ATTESTATION_SLOT)}`;
    return this.run(operation, true, async () => {
      const data = this.expectOk(await this.send(getDataCommand(ATTESTATION_CERTIFICATE_OBJECT)), {
        operation,
      });
      return decodeCertificateObject(parseGetData(data));
    });
  }

  /** The certificate stored for `slot`, or undefined when there is none. */
  readCertificate(slot: PivSlot): Promise<X509Certificate | undefined> {
    const operation = `read the certificate of slot ${slotName(slot)}`;
    return this.run(operation, true, async () => {
      const response = await this.send(getDataCommand(CERTIFICATE_OBJECT[slot]));
      if (response.sw === SW.FILE_NOT_FOUND) return undefined;
      return decodeCertificateObject(parseGetData(this.expectOk(response, { operation })));
    });
  }

  /** Stores a DER certificate for `slot` (PUT DATA, chained); needs the management key. */
  writeCertificate(slot: PivSlot, der: Uint8Array): Promise<void> {
    const operation = `write the certificate of slot ${slotName(slot)}`;
    const command = putDataCommand(CERTIFICATE_OBJECT[slot], encodeCertificateObject(der));
    return this.run(operation, true, async () => {
      await this.ensureManagementKey();
      this.expectOk(await this.send(command), { operation });
    });
  }

  /** Authenticates the management key now (generate and writeCertificate do it when needed). */
  authenticateManagementKey(): Promise<void> {
    return this.run('authenticate the management key', true, async () => {
      this.managementAuthenticated = false;
      await this.ensureManagementKey();
    });
  }

  // ---- Card presence ------------------------------------------------------------------------------------

  /** Whether a card is in this session's reader now (as pcscd last said). */
  get cardPresent(): boolean {
    return this.client.alive && this.client.cardPresent(this.readerName) === true;
  }

  /** Resolves once a card is in the reader (after CARD_REMOVED, while the person is asked to reinsert). */
  async waitForCard(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 5 * 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) throw closedError();
      if (!this.client.alive) await this.newClient(deadline);
      try {
        await this.client.waitFor(
          () => this.client.cardPresent(this.readerName) === true,
          Math.max(0, deadline - Date.now()),
          'the PIV card',
          options.signal,
        );
        return;
      } catch (error) {
        if (this.closed) throw closedError();
        // pcscd went away, or its context was replaced meanwhile: wait on the next one.
        const renewed =
          error instanceof PivError && ['PCSC_UNAVAILABLE', 'SESSION_CLOSED'].includes(error.reason);
        if (!renewed || Date.now() >= deadline) throw error;
      }
    }
  }

  /** Card insertions and removals in this session's reader; returns the unsubscribe function. */
  onCardEvent(listener: (event: 'inserted' | 'removed') => void): () => void {
    const handler = (event: CardEvent) => {
      if (event.reader === this.readerName) listener(event.type);
    };
    this.cardListeners.add(handler);
    this.client.events.on('card', handler);
    return () => {
      this.cardListeners.delete(handler);
      this.client.events.off('card', handler);
    };
  }

  /** Disconnects, resetting the card so that a PIN verified here does not outlive the session. */
  async close(): Promise<void> {
    if (this.closed) return;
    const queued = this.queue;
    this.closed = true;
    await queued.catch(() => {});
    await this.connection?.disconnect(true).catch(() => {});
    this.connection = undefined;
    this.client.close();
  }

  // ---- Connection ---------------------------------------------------------------------------------------

  private readonly cardListeners = new Set<(event: CardEvent) => void>();

  /** Open: pick the reader, connect, SELECT, and read the firmware version and serial once. */
  async connectFirst(): Promise<void> {
    let lastError: unknown;
    for (const name of readerCandidates(this.client.readers(), this.options.reader)) {
      try {
        this.readerName = name;
        await this.connect();
        return;
      } catch (error) {
        lastError = error;
        this.connection = undefined;
        if (this.options.reader !== undefined) break;
        if (
          !(error instanceof PivError) ||
          !['NO_CARD', 'APPLET_NOT_FOUND', 'CARD_IN_USE'].includes(error.reason)
        )
          break;
      }
    }
    throw lastError;
  }

  /** Connects to the card in the session's reader and SELECTs PIV; leaves no connection behind on failure. */
  private async connect(): Promise<void> {
    this.pinVerified = false;
    this.managementAuthenticated = false;
    const connection = await this.client.connect(this.readerName);
    this.connection = connection;
    try {
      const selected = await this.send(selectCommand());
      parseSelect(this.expectOk(selected, { operation: 'select the PIV application', select: true }));
      if (this.version === undefined) {
        // GET VERSION and GET SERIAL are YubiKey's: another PIV card answers 6D00, and that is fine.
        const version = await this.send(getVersionCommand());
        if (version.sw === SW.OK) this.version = parseVersion(version.data);
        const serial = await this.send(getSerialCommand());
        if (serial.sw === SW.OK) this.serial = parseSerial(serial.data);
      } else if (this.serial !== undefined) {
        const serial = await this.send(getSerialCommand());
        const now = serial.sw === SW.OK ? parseSerial(serial.data) : undefined;
        if (now !== this.serial) {
          throw new PivError(
            'CARD_CHANGED',
            `Another card is in "${this.readerName}" (serial ${now ?? 'unknown'}, not ${this.serial}). ` +
              'Insert the card you started with and try again.',
          );
        }
      }
    } catch (error) {
      this.connection = undefined;
      await connection.disconnect(false).catch(() => {});
      throw error;
    }
  }

  /**
   * Runs one operation, alone (operations queue). Reconnects first when the card or pcscd went away since
   * the last one. When pcscd goes away or the card is reset during it, a `repeatable` operation runs once
   * more on a new connection; a card pulled during it ends it with CARD_REMOVED.
   */
  private run<T>(operation: string, repeatable: boolean, body: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (this.closed) throw closedError();
      for (let attempt = 0; ; attempt++) {
        await this.ensureConnected(operation);
        try {
          return await body();
        } catch (error) {
          const failure = error instanceof PivError ? classifyPcscCode(error.pcscCode) : 'other';
          if (failure === 'other' || failure === 'in-use') throw error;
          this.dropConnection();
          if (failure === 'service-lost') this.client.markLost();
          if (failure === 'card-removed' || failure === 'no-card')
            throw removedDuring(operation, this.readerName);
          // A reset (another application's session ended) is reported before pcscd sends anything, so any
          // operation, a VERIFY included, runs again on a new connection; a few times, as resets can follow
          // one another while several sessions share the card.
          const reset = failure === 'card-reset';
          if ((!repeatable && !reset) || attempt >= (reset ? MAX_RESET_RETRIES : 1)) throw error;
        }
      }
    });
    this.queue = result.catch(() => {});
    return result;
  }

  private async ensureConnected(operation: string): Promise<void> {
    if (this.connection && this.client.alive) return;
    const deadline = Date.now() + (this.options.reconnectTimeoutMs ?? DEFAULT_RECONNECT_TIMEOUT_MS);
    for (;;) {
      if (!this.client.alive) {
        this.dropConnection();
        await this.newClient(deadline);
        // A new pcscd finds the cards at its first poll (400 ms): until then the reader reads empty.
        await this.client
          .waitFor(
            () => this.client.cardPresent(this.readerName) === true,
            Math.max(0, Math.min(deadline - Date.now(), CARD_AFTER_RESTART_MS)),
            'the card',
          )
          .catch(() => {});
      }
      if (this.client.cardPresent(this.readerName) === false) throw removedDuring(operation, this.readerName);
      try {
        await this.connect();
        return;
      } catch (error) {
        // pcscd went away and this context has not heard yet: a new one, while there is time.
        const lost = error instanceof PivError && classifyPcscCode(error.pcscCode) === 'service-lost';
        if (!lost || Date.now() >= deadline) throw error;
        this.dropConnection();
        this.client.markLost();
      }
    }
  }

  /** A new PC/SC context after pcscd went away, tried until `deadline`; one at a time. */
  private newClient(deadline: number): Promise<void> {
    this.renewing ??= this.startNewClient(deadline).finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async startNewClient(deadline: number): Promise<void> {
    this.client.close();
    for (;;) {
      try {
        const client = await PcscClient.start();
        if (this.closed) {
          client.close();
          throw closedError();
        }
        if (client.readers().some((reader) => reader.name === this.readerName)) {
          this.client = client;
          this.watch(client);
          for (const listener of this.cardListeners) client.events.on('card', listener);
          return;
        }
        client.close();
      } catch (error) {
        if (!(error instanceof PivError) || error.reason !== 'PCSC_UNAVAILABLE') throw error;
      }
      if (this.closed) throw closedError();
      if (Date.now() >= deadline)
        throw new PivError(
          'PCSC_UNAVAILABLE',
          `The smart card service (pcscd) did not come back with "${this.readerName}". Start pcscd ` +
            '(`systemctl start pcscd.socket`), check the reader and try again.',
        );
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_POLL_MS));
    }
  }

  private watch(client: PcscClient): void {
    client.events.on('card', (event: CardEvent) => {
      if (event.reader === this.readerName && event.type === 'removed') this.dropConnection();
    });
    client.events.on('service-lost', () => this.dropConnection());
  }

  /** The card or pcscd is gone: the next operation connects again; the PIN is no longer verified. */
  private dropConnection(): void {
    this.connection?.abandon();
    this.connection = undefined;
    this.pinVerified = false;
    this.managementAuthenticated = false;
  }

  // ---- Steps --------------------------------------------------------------------------------------------

  private async send(command: CommandApdu): Promise<ResponseApdu> {
    const connection = this.connection;
    if (!connection) throw removedDuring('talk to the card', this.readerName);
    const extended = this.options.extended ?? false;
    const transmit = async (bytes: Uint8Array) => {
      const response = await connection.transmit(bytes, extended);
      if (response.length === 0) throw await this.noAnswer();
      return response;
    };
    return exchange(transmit, command, {
      extended,
      onApdu: () => this.apduCount++,
    });
  }

  /**
   * An answer of no bytes at all: what pcscd hands back when the card leaves during the command (vpcd
   * does so). pcscd sees the card gone at its next poll (400 ms): removed if it does, malformed if not.
   */
  private async noAnswer(): Promise<PivError> {
    const gone = () => this.client.cardPresent(this.readerName) !== true;
    const removed = await this.client.waitFor(gone, NO_ANSWER_SETTLE_MS, 'the card to settle').then(
      () => true,
      () => false,
    );
    return removed
      ? cardRemoved('talk to the card', this.readerName, SCARD.W_REMOVED_CARD)
      : malformed('an empty answer, without a status word');
  }

  private expectOk(response: ResponseApdu, context: StatusContext): Uint8Array {
    return checkStatus(response, context);
  }

  private async verify(pin: string): Promise<void> {
    this.pinVerified = false;
    this.expectOk(await this.send(verifyPinCommand(pin)), { operation: 'verify the PIN', credential: 'PIN' });
    this.pinVerified = true;
  }

  private async pinFrom(source: PinSource | undefined, operation: string): Promise<string> {
    if (source === undefined)
      throw new PivError(
        'PIN_REQUIRED',
        `The PIV card needs its PIN to ${operation}. Enter the PIN and try again.`,
      );
    return typeof source === 'string' ? source : source();
  }

  /** Mutual authentication with the management key, once per connection. */
  private async ensureManagementKey(): Promise<void> {
    if (this.managementAuthenticated) return;
    const given = this.options.managementKey;
    const candidates: ManagementKey[] = given
      ? [given]
      : (await this.defaultKeyAlgorithms()).map((algorithm) =>
          managementKey(algorithm, DEFAULT_MANAGEMENT_KEY_BYTES),
        );
    for (const [index, key] of candidates.entries()) {
      const operation = 'authenticate the management key';
      const first = await this.send(requestWitnessCommand(key.algorithm));
      // 6A86 / 6A80: the card's key has another algorithm; the next candidate is the other one.
      const wrongAlgorithm = first.sw === SW.INCORRECT_P1P2 || first.sw === SW.INCORRECT_DATA;
      if (wrongAlgorithm && index < candidates.length - 1) continue;
      const { command, expected } = answerWitness(
        key,
        parseWitness(key.algorithm, this.expectOk(first, { operation })),
      );
      const second = await this.send(command);
      if (second.sw === SW.SECURITY_STATUS_NOT_SATISFIED) throw managementKeyRejected(second.sw);
      checkCardProof(expected, this.expectOk(second, { operation }));
      this.managementAuthenticated = true;
      return;
    }
  }

  /**
   * The factory key's algorithm: what GET METADATA says (firmware 5.3+), else by firmware (AES-192 from
   * 5.7 on, 3DES before), with the other one as the fallback.
   */
  private async defaultKeyAlgorithms(): Promise<ManagementKeyAlgorithm[]> {
    const { major = 0, minor = 0 } = this.version ?? {};
    const byFirmware: ManagementKeyAlgorithm = major > 5 || (major === 5 && minor >= 7) ? 'aes192' : 'tdes';
    const other: ManagementKeyAlgorithm = byFirmware === 'aes192' ? 'tdes' : 'aes192';
    if (major > 5 || (major === 5 && minor >= 3)) {
      const response = await this.send(getMetadataCommand(MANAGEMENT_KEY_SLOT));
      if (response.sw === SW.OK) {
        const { algorithm } = parseMetadata(response.data);
        const named = (Object.keys(MANAGEMENT_ALGORITHM_ID) as ManagementKeyAlgorithm[]).find(
          (name) => MANAGEMENT_ALGORITHM_ID[name] === algorithm,
        );
        if (named === 'tdes' || named === 'aes192') return [named];
      }
    }
    return [byFirmware, other];
  }
}

function removedDuring(operation: string, reader: string): PivError {
  return new PivError(
    'CARD_REMOVED',
    `The PIV card was removed from "${reader}" while trying to ${operation}. Reinsert it and try again.`,
  );
}

function closedError(): PivError {
  return new PivError('SESSION_CLOSED', 'The PIV session is closed.');
}
