// keyport-auth's certificate authorities: the API the rest of auth/ uses.
export { CaError, InsecureCaFileError } from './errors';
export type { CaErrorCode } from './errors';
export {
  CA_DIRECTORY,
  SSH_USER_CA_KEY_FILE,
  TLS_CA_CERT_FILE,
  TLS_CA_KEY_FILE,
  caPin,
  issueHostCertificate,
  loadOrCreateAuthorities,
} from './authority';
export type {
  Authorities,
  HostCertificate,
  HostNames,
  SshUserCertificateAuthority,
  TlsCertificateAuthority,
} from './authority';
export {
  SSH_STANDARD_USER_EXTENSIONS,
  parseSshCertificate,
  parseSshPublicKey,
  signSshUserCertificate,
  sshCaPublicKeyLine,
  sshPublicKeyFromKeyObject,
  sshPublicKeyLine,
} from './ssh';
export type {
  ParseSshCertificateOptions,
  SshCertificate,
  SshCertificateAlgorithm,
  SshPublicKey,
  SshPublicKeyAlgorithm,
  SshStandardUserExtension,
  SshUserCertificateRequest,
} from './ssh';
export {
  CLIENT_IDENTITY_EXTENSION_OID,
  KEYPORT_OID_ARC,
  issueClientCertificate,
  verifyClientCertificate,
} from './x509';
export type {
  ClientCertificateRequest,
  ClientIdentity,
  IssuedClientCertificate,
  VerifiedClientCertificate,
} from './x509';
