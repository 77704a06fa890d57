// keyport-node's decisions on bytes, with no I/O: sshd's arguments, the offered certificate's fields, the
// local checks made before keyport-auth is asked, and the sshd connection's identity from /proc.
//
// sshd runs `keyport-node principals CONFIG %u %t %k %s` as its AuthorizedPrincipalsCommand, after it has
// checked that the certificate is signed by a CA of TrustedUserCAKeys, but before it checks the
// certificate's validity window. So keyport-node checks validity itself first (a certificate past its end
// must not spend a single-use serial on a login that then fails), then asks keyport-auth, which checks
// everything again on its own clock and spends a single-use certificate for this connection.

/** What sshd passes. */
export interface PrincipalsQuery {
  configPath: string;
  login: string;
  certificateType: string;
  certificate: string;
  serial: string;
}

export class NodeRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeRefusal';
  }
}

const CERT_TYPES = new Set(['ssh-ed25519-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com']);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_CERTIFICATE_CHARS = 8 * 1024;

export function parsePrincipalsArgs(argv: readonly string[]): PrincipalsQuery {
  const [command, configPath, login, certificateType, certificate, serial, ...rest] = argv;
  if (command !== 'principals' || rest.length > 0 || serial === undefined) {
    throw new NodeRefusal('usage: keyport-node principals CONFIG %u %t %k %s');
  }
  if (!configPath || !login || !certificateType || !certificate) {
    throw new NodeRefusal('an argument is empty');
  }
  return { configPath, login, certificateType, certificate, serial };
}

/** The fields of an OpenSSH certificate keyport-node looks at (PROTOCOL.certkeys); no signature check. */
export interface OfferedCertificate {
  serial: bigint;
  type: 'user' | 'host';
  keyId: string;
  principals: string[];
  validAfterMs: number;
  validBeforeMs: number;
  extensions: Record<string, string>;
}

class Reader {
  private offset = 0;
  constructor(private readonly bytes: Buffer) {}
  private take(length: number): Buffer {
    if (length < 0 || this.offset + length > this.bytes.length)
      throw new NodeRefusal('truncated certificate');
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
  uint32(): number {
    return this.take(4).readUInt32BE();
  }
  uint64(): bigint {
    return this.take(8).readBigUInt64BE();
  }
  string(): Buffer {
    return this.take(this.uint32());
  }
  text(): string {
    return this.string().toString('utf8');
  }
  get atEnd(): boolean {
    return this.offset === this.bytes.length;
  }
}

const MAX_TIME_MS = 8.64e15;
const toMs = (seconds: bigint) =>
  Number(seconds * 1000n > BigInt(MAX_TIME_MS) ? BigInt(MAX_TIME_MS) : seconds * 1000n);

/** Reads the certificate sshd gives as %t and %k. Anything malformed is a NodeRefusal. */
export function readOfferedCertificate(certificateType: string, base64: string): OfferedCertificate {
  if (!CERT_TYPES.has(certificateType))
    throw new NodeRefusal(`not a certificate type keyport issues: ${certificateType}`);
  if (base64.length > MAX_CERTIFICATE_CHARS || !BASE64.test(base64))
    throw new NodeRefusal('certificate is not base64');
  const reader = new Reader(Buffer.from(base64, 'base64'));
  if (reader.text() !== certificateType) throw new NodeRefusal('certificate blob is not of its type');
  reader.string(); // nonce
  if (certificateType.startsWith('ssh-ed25519')) reader.string();
  else {
    reader.string(); // curve
    reader.string(); // point
  }
  const serial = reader.uint64();
  const typeCode = reader.uint32();
  if (typeCode !== 1 && typeCode !== 2) throw new NodeRefusal(`unknown certificate type ${typeCode}`);
  const keyId = reader.text();
  const principalsReader = new Reader(reader.string());
  const principals: string[] = [];
  while (!principalsReader.atEnd) principals.push(principalsReader.text());
  const validAfterMs = toMs(reader.uint64());
  const validBeforeMs = toMs(reader.uint64());
  reader.string(); // critical options
  const extensionsReader = new Reader(reader.string());
  const extensions: Record<string, string> = {};
  while (!extensionsReader.atEnd) {
    const name = extensionsReader.text();
    const data = extensionsReader.string();
    extensions[name] = data.length === 0 ? '' : new Reader(data).text();
  }
  return {
    serial,
    type: typeCode === 1 ? 'user' : 'host',
    keyId,
    principals,
    validAfterMs,
    validBeforeMs,
    extensions,
  };
}

/**
 * The checks keyport-node makes before it asks keyport-auth: a user certificate, sshd's serial is the
 * certificate's, the login is one of its principals, and it is valid now on this node's clock.
 */
export function checkOffered(query: PrincipalsQuery, certificate: OfferedCertificate, nowMs: number): void {
  if (certificate.type !== 'user') throw new NodeRefusal('not a user certificate');
  if (query.serial !== certificate.serial.toString())
    throw new NodeRefusal('serial does not match the certificate');
  if (!certificate.principals.includes(query.login)) {
    throw new NodeRefusal(`the certificate of ${certificate.keyId} does not name the login "${query.login}"`);
  }
  if (nowMs < certificate.validAfterMs)
    throw new NodeRefusal(`the certificate of ${certificate.keyId} is not valid yet`);
  if (nowMs >= certificate.validBeforeMs)
    throw new NodeRefusal(`the certificate of ${certificate.keyId} has expired`);
}

/**
 * The sshd connection keyport-node runs for: its parent (sshd's per-connection `[priv]` process, the same
 * for both of sshd's calls on one connection) as "PID:STARTTIME", STARTTIME being field 22 of
 * /proc/PID/stat, so that a PID reused by a later connection is another connection.
 */
export function connectionId(parentPid: number, procStat: string): string {
  const close = procStat.lastIndexOf(')');
  if (!Number.isInteger(parentPid) || parentPid <= 1 || close < 0)
    throw new NodeRefusal('cannot identify the sshd connection');
  const fields = procStat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const startTime = fields[19];
  if (startTime === undefined || !/^[0-9]+$/.test(startTime))
    throw new NodeRefusal('cannot read the sshd connection start time');
  return `${parentPid}:${startTime}`;
}
