// keyport-auth against an outsider (issue 8): unauthenticated calls with fields over their bounds, floods
// from one address, and random or mutated protobuf bytes for every unauthenticated method. Each answer
// must carry a stable code in keyport-error-bin, nothing must be stored for a refused call, and the
// service must keep answering. Real keyport-auth processes; a lab clock moves the rate-limit windows.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { errorCodes, ERROR_METADATA_KEY, fromServiceError } from '../proto/errors';
import {
  CompleteSignupRequest,
  CreateAuthenticateChallengeRequest,
  LoginRequest,
  StartSignupRequest,
} from '../proto/gen/keyport/v1/auth';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { createLabClock } from '../lab/clock';
import {
  connectAsAdmin,
  openClusterDb,
  runAdmin,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import { totpCode } from '../auth/totp';
import type { LabCluster, SignedUpUser } from '../lab/cluster';

let open: LabCluster;
let limited: LabCluster;
const clock = createLabClock();
let homes: string;
/** Signed up before the lab clock moves: the test's OTP codes are the wall clock's. */
let vic: SignedUpUser;

beforeAll(async () => {
  homes = await mkdtemp(join(tmpdir(), 'keyport-abuse-'));
  [open, limited] = await Promise.all([
    // The fuzz loop sends hundreds of calls: no rate limit in its way.
    startLabCluster({
      clusterName: 'abuse',
      configYaml: 'auth_service:\n  rate_limit:\n    per_address: 100000\n    per_user: 100000\n',
    }),
    startLabCluster({
      clusterName: 'limited',
      env: clock.env,
      configYaml: 'auth_service:\n  rate_limit:\n    per_address: 20\n    per_user: 6\n    window: 1m\n',
    }),
  ]);
  vic = await signUpUserInProcess(limited, join(homes, 'vic'), 'vic', ['access']);
});

afterAll(async () => {
  await Promise.all([open?.stop(), limited?.stop()]);
  clock.dispose();
  await rm(homes, { recursive: true, force: true });
});

async function caPem(cluster: LabCluster): Promise<string> {
  return (
    JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as { caCertPem: string }
  ).caCertPem;
}

async function anonymous(cluster: LabCluster): Promise<ClusterApi> {
  return connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: await caPem(cluster),
    caPin: cluster.caPin,
  });
}

function rowCounts(cluster: LabCluster) {
  const db = openClusterDb(cluster, { readonly: true });
  try {
    const count = (table: string) =>
      (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    return {
      audit: count('audit_events'),
      users: count('users'),
      challenges: count('challenges'),
      tokens: count('signup_tokens'),
    };
  } finally {
    db.close();
  }
}

describe('fields over their bounds', () => {
  it('refuses each with INVALID_ARGUMENT naming the field, before anything is stored or hashed', async () => {
    const api = await anonymous(open);
    const before = rowCounts(open);
    try {
      const cases: [() => Promise<unknown>, string][] = [
        [
          () =>
            api.auth.createAuthenticateChallenge({
              user: 'u'.repeat(129),
              password: 'p',
              scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
            }),
          'user',
        ],
        [
          () =>
            api.auth.createAuthenticateChallenge({
              user: 'lee',
              password: 'p'.repeat(1025),
              scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
            }),
          'password',
        ],
        [
          () =>
            api.auth.startSignup({
              token: 't'.repeat(257),
              deviceType: 0,
              passwordless: false,
              deviceCredentialId: '',
            }),
          'token',
        ],
        [
          () => api.auth.completeSignup({ token: 't', password: 'p'.repeat(5000), newDevice: undefined }),
          'password',
        ],
        [
          () =>
            api.auth.login({
              mfaResponse: {
                challengeId: 'c',
                response: { $case: 'webauthnJson', value: '{'.repeat(70_000) },
              },
              sshPublicKey: '',
              tlsPublicKey: '',
              ttlSeconds: 0,
            }),
          'mfa_response.webauthn_json',
        ],
        [
          () =>
            api.auth.login({
              mfaResponse: {
                challengeId: 'c'.repeat(300),
                response: { $case: 'totp', value: { code: '123456' } },
              },
              sshPublicKey: '',
              tlsPublicKey: '',
              ttlSeconds: 0,
            }),
          'mfa_response.challenge_id',
        ],
      ];
      for (const [call, fieldPath] of cases) {
        await expect(call()).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          fields: { fieldPath },
          message: expect.stringMatching(
            new RegExp(`^${fieldPath.replace(/\./g, '\\.')} is too long: at most \\d+`),
          ),
        });
      }
    } finally {
      api.close();
    }
    expect(rowCounts(open)).toEqual(before);
  });

  it('refuses a message over 1 MiB as RESOURCE_EXHAUSTED, and the database does not grow', async () => {
    const api = await anonymous(open);
    const dbFile = join(open.dataDir, 'keyport.db');
    const before = rowCounts(open);
    const sizeBefore =
      statSync(dbFile).size + (statSync(`${dbFile}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    try {
      for (let i = 0; i < 5; i++) {
        await expect(
          api.auth.createAuthenticateChallenge({
            user: 'x'.repeat(3_900_000),
            password: 'p',
            scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
          }),
        ).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
      }
    } finally {
      api.close();
    }
    expect(rowCounts(open)).toEqual(before);
    const sizeAfter =
      statSync(dbFile).size + (statSync(`${dbFile}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    expect(sizeAfter - sizeBefore).toBeLessThan(64 * 1024);
  });
});

describe('hostile resource files for keyport admin create -f', () => {
  it.each([
    [
      'an alias bomb',
      [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        ...'bcdef'
          .split('')
          .map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdef'[i]}`).join(', ')}]`),
        'kind: role',
      ].join('\n'),
      /aliases expand too much/,
    ],
    [
      '100,000 levels of nesting',
      `kind: role\nspec: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`,
      /nested/,
    ],
    [
      'a user with 100,000 roles',
      `kind: user\nversion: v2\nmetadata: {name: flood}\nspec:\n  roles: [${Array(100_000).fill('access').join(', ')}]\n`,
      /spec\.roles: at most 64 entries/,
    ],
  ])(
    'refuses %s with a typed error (exit 2), not a stack trace, and stores nothing',
    async (_what, text, message) => {
      const file = join(homes, `hostile-${Math.random().toString(36).slice(2)}.yaml`);
      await writeFile(file, text);
      const before = rowCounts(open);
      const result = await runAdmin(open, ['create', '-f', file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(rowCounts(open)).toEqual(before);
    },
  );
});

describe('signup started twice', () => {
  it('shows the same OTP secret on every StartSignup of one token, and that secret completes the signup', async () => {
    const admin = await connectAsAdmin(open);
    const { signupToken } = await admin.admin.createUser({ name: 'twice', roles: ['access'], traits: {} });
    admin.close();
    const api = await anonymous(open);
    try {
      const start = () =>
        api.auth.startSignup({
          token: signupToken,
          deviceType: 1,
          passwordless: false,
          deviceCredentialId: '',
        });
      const first = await start();
      const raced = await Promise.all([start(), start(), start()]);
      const secrets = [first, ...raced].map((s) => s.registerChallenge?.totp?.secret);
      expect(new Set(secrets).size).toBe(1);
      expect(secrets[0]).toMatch(/^[A-Z2-7]{32}$/);
      const done = await api.auth.completeSignup({
        token: signupToken,
        password: 'twice-password-123',
        newDevice: {
          challengeId: '',
          deviceName: 'otp',
          response: { $case: 'totp', value: { code: totpCode(secrets[0] as string, Date.now()) } },
        },
      });
      expect(done.user).toBe('twice');
      // Spent: a late StartSignup learns nothing more.
      await expect(start()).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    } finally {
      api.close();
    }
  });
});

describe('rate limits', () => {
  /**
   * Moves the lab clock to half a second into the next one-minute window, so a test's calls (however
   * slow the machine) all fall in one window and count together.
   */
  const startOfNextWindow = () => clock.advance(60_000 - (clock.now() % 60_000) + 500);

  it('serves at most per_address calls a minute from one address, audits the flood once, and serves again in the next window', async () => {
    startOfNextWindow();
    const api = await anonymous(limited);
    const before = rowCounts(limited);
    try {
      // A well-formed key, so that a Login with an unknown challenge gets as far as spending it.
      const tlsPublicKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString();
      const answers = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          i % 3 === 0
            ? api.auth.createAuthenticateChallenge({
                user: `nobody-${i}`,
                password: 'guess-guess-guess',
                scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
              })
            : i % 3 === 1
              ? api.auth.startSignup({
                  token: `bogus-${i}`,
                  deviceType: 0,
                  passwordless: false,
                  deviceCredentialId: '',
                })
              : // A refused Login counts against the limit (a successful one was counted at its step one).
                api.auth.login({
                  mfaResponse: {
                    challengeId: `bogus-${i}`,
                    response: { $case: 'totp', value: { code: '123456' } },
                  },
                  sshPublicKey: '',
                  tlsPublicKey,
                  ttlSeconds: 0,
                }),
        ),
      );
      const refusals = answers.map((a) =>
        a.status === 'rejected'
          ? (a.reason as { code: string; fields: { retryAfterMs?: number } })
          : undefined,
      );
      const limitedOnes = refusals.filter((r) => r?.code === 'RESOURCE_EXHAUSTED');
      expect(limitedOnes.length).toBe(40);
      for (const refusal of limitedOnes) {
        expect(refusal?.fields.retryAfterMs).toBeGreaterThan(0);
        expect(refusal?.fields.retryAfterMs).toBeLessThanOrEqual(60_000);
      }
      // Twenty calls were served (each audited as refused), plus one line for the flood, not forty.
      const after = rowCounts(limited);
      expect(after.audit - before.audit).toBe(21);
      const db = openClusterDb(limited, { readonly: true });
      const flood = db
        .prepare("select count(*) as n from audit_events where type = 'rate.limited'")
        .get() as { n: number };
      db.close();
      expect(flood.n).toBe(1);

      // Still refused within the window; served again in the next one.
      await expect(
        api.auth.startSignup({
          token: 'bogus-again',
          deviceType: 0,
          passwordless: false,
          deviceCredentialId: '',
        }),
      ).rejects.toMatchObject({
        code: 'RESOURCE_EXHAUSTED',
      });
      // Passwordless challenges (each one stored) count against the same limit.
      await expect(
        api.auth.createAuthenticateChallenge({
          user: '',
          password: '',
          scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
        }),
      ).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
      clock.advance(60_000);
      await expect(
        api.auth.startSignup({
          token: 'bogus-again',
          deviceType: 0,
          passwordless: false,
          deviceCredentialId: '',
        }),
      ).rejects.toMatchObject({
        code: 'ACCESS_DENIED',
      });
    } finally {
      api.close();
    }
  });

  it('serves at most per_user password attempts a minute for one name, known or not, in the same words', async () => {
    startOfNextWindow();
    const api = await anonymous(limited);
    try {
      const words: string[] = [];
      for (const [name, password] of [
        ['vic', vic.password],
        ['nobody-at-all', 'some-password-123'],
      ] as const) {
        for (let i = 0; i < 6; i++) {
          await api.auth
            .createAuthenticateChallenge({
              user: name,
              password,
              scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
            })
            .catch((error: { code: string }) => expect(error.code).not.toBe('RESOURCE_EXHAUSTED'));
        }
        const seventh = await api.auth
          .createAuthenticateChallenge({ user: name, password, scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN })
          .catch((error: Error) => error);
        expect(seventh).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
        words.push((seventh as Error).message.replace(/in \d+ s\./, 'in N s.'));
      }
      expect(words[0]).toBe(words[1]);
      expect(words[0]).not.toMatch(/vic|nobody/);
    } finally {
      api.close();
    }
  });
});

describe('random and mutated protobuf bytes', () => {
  const methods = {
    StartSignup: StartSignupRequest.encode({
      token: 'tok',
      deviceType: 1,
      passwordless: false,
      deviceCredentialId: '',
    }).finish(),
    CompleteSignup: CompleteSignupRequest.encode({
      token: 'tok',
      password: 'a-password-123',
      newDevice: undefined,
    }).finish(),
    CreateAuthenticateChallenge: CreateAuthenticateChallengeRequest.encode({
      user: 'lee',
      password: 'pw',
      scope: 1,
    }).finish(),
    Login: LoginRequest.encode({
      mfaResponse: { challengeId: 'c', response: { $case: 'totp', value: { code: '123456' } } },
      sshPublicKey: 'ssh-ed25519 AAAA',
      tlsPublicKey: 'pem',
      ttlSeconds: 60,
    }).finish(),
  };

  it('answers every one with a stable code, and keeps serving GetClusterInfo', async () => {
    const client = new Client(open.address, credentials.createSsl(Buffer.from(await caPem(open))));
    const call = (method: string, bytes: Uint8Array) =>
      new Promise<{ code: string | undefined }>((resolve) => {
        client.makeUnaryRequest(
          `/keyport.v1.AuthService/${method}`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(bytes),
          new Metadata(),
          { deadline: Date.now() + 30_000 },
          (error: ServiceError | null) => {
            if (!error) return resolve({ code: undefined });
            const detail = error.metadata?.get(ERROR_METADATA_KEY)[0];
            resolve({
              code: detail ? fromServiceError(error).code : `no trailer (${error.code}: ${error.details})`,
            });
          },
        );
      });
    const mutated = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc
        .tuple(
          fc.constantFrom(...Object.values(methods)),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
          fc.nat(),
        )
        .map(([valid, flips, cut]) => {
          const bytes = Uint8Array.from(valid);
          for (const [at, value] of flips) bytes[at % bytes.length] = value;
          return bytes.subarray(0, bytes.length - (cut % 4));
        }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...Object.keys(methods)), mutated, async (method, bytes) => {
          const { code } = await call(method, bytes);
          if (code !== undefined) expect(errorCodes as readonly string[]).toContain(code);
        }),
        { numRuns: 300, seed: 20261206 },
      );
      // Plainly random bytes of every length up to 4 KiB, too.
      for (const method of Object.keys(methods)) {
        for (let i = 0; i < 10; i++) {
          const { code } = await call(method, randomBytes(1 + i * 400));
          if (code !== undefined) expect(errorCodes as readonly string[]).toContain(code);
        }
      }
    } finally {
      client.close();
    }
    const api = await anonymous(open);
    try {
      expect((await api.auth.getClusterInfo({})).clusterName).toBe('abuse');
    } finally {
      api.close();
    }
  });
});
