// The import rules of docs/architecture.md are enforced by the linter: a forbidden import fails `npm run lint`.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../lab/cluster';

const eslint = new ESLint({ cwd: repoRoot });

async function importErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'import-x/no-restricted-paths' || m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('import rules', () => {
  it.each([
    ['client/probe.ts', "import { startAuthServer } from '../auth/server';\nvoid startAuthServer;\n"],
    ['client/probe.ts', "import { startLabCluster } from '../lab/cluster';\nvoid startLabCluster;\n"],
    ['auth/probe.ts', "import { ProfileStore } from '../client/profiles';\nvoid ProfileStore;\n"],
    ['cli/probe.ts', "import { hashPassword } from '../auth/passwords';\nvoid hashPassword;\n"],
    ['proto/probe.ts', "import { KeyportError } from '../client/api';\nvoid KeyportError;\n"],
    // The web UI runs in a browser: no service code, no proto beyond the web API's shapes.
    ['web/src/probe.ts', "import { loadCap } from '../../auth/policy';\nvoid loadCap;\n"],
    ['web/src/probe.ts', "import { KeyportError } from '../../proto/errors';\nvoid KeyportError;\n"],
    ['auth/probe.ts', "import { api } from '../web/src/api';\nvoid api;\n"],
    // Assembled, so that no file outside main/electron and preload reads as importing electron.
    ['client/probe.ts', ['import { app } from ', "'electron'", ';\nvoid app;\n'].join('')],
  ])('rejects the forbidden import in %s', async (filePath, source) => {
    expect(await importErrors(filePath, source)).not.toEqual([]);
  });

  it.each([
    ['cli/probe.ts', "import { ProfileStore } from '../client/profiles';\nvoid ProfileStore;\n"],
    ['client/probe.ts', "import { KeyportError } from '../proto/errors';\nvoid KeyportError;\n"],
    [
      'auth/probe.ts',
      "import { AuthServiceService } from '../proto/gen/keyport/v1/auth';\nvoid AuthServiceService;\n",
    ],
    ['test/probe.ts', "import { startLabCluster } from '../lab/cluster';\nvoid startLabCluster;\n"],
    ['web/src/probe.ts', "import { WEBAPI } from '../../proto/webapi';\nvoid WEBAPI;\n"],
    ['auth/probe.test.ts', "import { startLabCluster } from '../lab/cluster';\nvoid startLabCluster;\n"],
  ])('allows the import in %s', async (filePath, source) => {
    expect(await importErrors(filePath, source)).toEqual([]);
  });
});
