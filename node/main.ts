// keyport-node: sshd's AuthorizedPrincipalsCommand on a node. Prints the principals to allow (one per
// line) and exits 0, or prints nothing, says why on stderr and exits 1. Steps:
//   1. sshd's arguments and the node's configuration file;
//   2. the offered certificate read and checked locally (decision.ts), on this node's clock;
//   3. the connection's identity from /proc/PPID/stat;
//   4. one call to keyport-auth with the node's own identity (mTLS, the cluster's CA), which checks RBAC,
//      device trust and per-session MFA and spends a single-use certificate for this connection.
import { readFile } from 'node:fs/promises';
import { credentials, Metadata } from '@grpc/grpc-js';
import { clockFromEnv } from '../proto/clock';
import { fromServiceError } from '../proto/errors';
import { NodeServiceClient } from '../proto/gen/keyport/v1/node';
import type { AuthorizeConnectionResponse } from '../proto/gen/keyport/v1/node';
import { readNodeConfig } from './config';
import {
  checkOffered,
  connectionId,
  NodeRefusal,
  parsePrincipalsArgs,
  readOfferedCertificate,
} from './decision';

const CALL_DEADLINE_MS = 15_000;

async function principals(argv: readonly string[]): Promise<string[]> {
  const query = parsePrincipalsArgs(argv);
  const config = await readNodeConfig(query.configPath);
  const certificate = readOfferedCertificate(query.certificateType, query.certificate);
  checkOffered(query, certificate, clockFromEnv()());
  const connection = connectionId(process.ppid, await readFile(`/proc/${process.ppid}/stat`, 'utf8'));
  const [ca, cert, key] = await Promise.all([
    readFile(config.tls_ca_file),
    readFile(config.identity_cert_file),
    readFile(config.identity_key_file),
  ]);
  const client = new NodeServiceClient(config.auth_addr, credentials.createSsl(ca, key, cert));
  try {
    const response = await new Promise<AuthorizeConnectionResponse>((resolve, reject) => {
      client.authorizeConnection(
        {
          certificateType: query.certificateType,
          certificate: query.certificate,
          login: query.login,
          connection,
        },
        new Metadata(),
        { deadline: new Date(Date.now() + CALL_DEADLINE_MS) },
        (error, answer) => (error ? reject(fromServiceError(error)) : resolve(answer)),
      );
    });
    return response.principals;
  } finally {
    client.close();
  }
}

try {
  const allowed = await principals(process.argv.slice(2));
  process.stdout.write(allowed.map((principal) => `${principal}\n`).join(''));
} catch (error) {
  const reason = error instanceof NodeRefusal || error instanceof Error ? error.message : String(error);
  process.stderr.write(`keyport-node: refused: ${reason}\n`);
  process.exitCode = 1;
}
