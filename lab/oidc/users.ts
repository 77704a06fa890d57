// The lab IdP's users file (YAML or JSON): user name, password, email, display name and groups.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const DEFAULT_LAB_OIDC_USERS = fileURLToPath(new URL('./users.yaml', import.meta.url));

const labUser = z.strictObject({
  username: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
  password: z.string().min(1).max(256),
  /** The ID token's `sub`; the user name when not given. */
  sub: z.string().min(1).max(255).optional(),
  email: z.string().max(256).optional(),
  name: z.string().max(256).optional(),
  groups: z.array(z.string().max(256)).max(256).default([]),
});

const usersFile = z.strictObject({ users: z.array(labUser).max(1000) });

export type LabOidcUser = z.output<typeof labUser>;

export async function readLabOidcUsers(path = DEFAULT_LAB_OIDC_USERS): Promise<LabOidcUser[]> {
  const parsed = usersFile.safeParse(parseYaml(await readFile(path, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data.users;
}
