// keyport-node's configuration file, written by `keyport admin nodes add` beside the node's other files.
// sshd runs keyport-node with a bare environment, so everything it needs is here (paths absolute).
import { readFile } from 'node:fs/promises';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { NodeRefusal } from './decision';

// zod/mini (it bundles small) carries no messages unless given a locale: without one every refusal reads
// "Invalid input".
z.config(en());

const configSchema = z.strictObject({
  /** The node's name, as registered. */
  node: z.string().check(z.minLength(1), z.maxLength(128)),
  /** keyport-auth's HOST:PORT (loopback or a private address). */
  auth_addr: z.string().check(z.minLength(1), z.maxLength(300)),
  /** The cluster's TLS CA certificate: keyport-auth is trusted only with it. */
  tls_ca_file: z.string().check(z.startsWith('/')),
  /** The node's identity: an X.509 certificate of the cluster naming the node, and its key (0600). */
  identity_cert_file: z.string().check(z.startsWith('/')),
  identity_key_file: z.string().check(z.startsWith('/')),
});

export type NodeConfig = z.infer<typeof configSchema>;

export async function readNodeConfig(path: string): Promise<NodeConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new NodeRefusal(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = configSchema.safeParse(parsed);
  const issue = result.success ? undefined : result.error.issues[0];
  if (!result.success)
    throw new NodeRefusal(`${path}: ${issue?.path.join('.') || 'config'}: ${issue?.message ?? 'invalid'}`);
  return result.data;
}
