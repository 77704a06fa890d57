// The deliberate crypto of one login, the floor's second part, and nothing else: one ES256 verify of an
// assertion (over authenticatorData ‖ SHA-256(clientDataJSON)), one Ed25519 signature by the SSH CA and
// one ECDSA P-256 signature by the TLS CA, over as many bytes as a login's two certificates sign, with
// node:crypto's synchronous calls, one login after another. Building the certificates' bytes, parsing the
// assertion and keyport's own checks are the login's work, measured against this, not part of it. The
// load generator samples it between its slices (bench/replicas-load.ts), so it is timed on the same
// machine, at the same moments, as the floor's calls and the logins.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { generatePrivateKey } from '../auth/ca/authority';
import { makeAssertion } from './passkey-assertion';
import type { LoadUser } from './passkey-assertion';

// What a login's certificates sign: an SSH certificate's signed part and an X.509 TBSCertificate, in bytes
// (about what auth/certificates.ts makes for a user with a few roles and logins).
const SSH_SIGNED_BYTES = 480;
const X509_TBS_BYTES = 640;

export interface LoginCrypto {
  /** `n` logins' crypto, one after another: each one's time in ms. */
  sample(n: number): number[];
}

/** The CA keys and `user`'s passkey (its public half, imported once as keyport-auth keeps it). */
export function loginCrypto(user: LoadUser, rp: { rpId: string; origin: string }): LoginCrypto {
  const sshCa = generatePrivateKey('Ed25519');
  const tlsCa = generatePrivateKey('ECDSA P-256');
  const passkey = createPrivateKey(user.privateKeyPem);
  const passkeyPublic = createPublicKey(passkey);
  let signCount = 0;
  return {
    sample(n) {
      const samples: number[] = [];
      for (let i = 0; i < n; i++) {
        const challenge = randomBytes(32).toString('base64url');
        const assertion = makeAssertion(user, passkey, { challenge, rpId: rp.rpId }, rp.origin, ++signCount);
        const authData = Buffer.from(assertion.response.authenticatorData, 'base64url');
        const clientData = Buffer.from(assertion.response.clientDataJSON, 'base64url');
        const signature = Buffer.from(assertion.response.signature, 'base64url');
        const sshSigned = randomBytes(SSH_SIGNED_BYTES);
        const tbs = randomBytes(X509_TBS_BYTES);
        const start = performance.now();
        const signed = Buffer.concat([authData, createHash('sha256').update(clientData).digest()]);
        if (!verify('sha256', signed, passkeyPublic, signature)) {
          throw new Error('the floor assertion did not verify');
        }
        sign(null, sshSigned, sshCa);
        sign('sha256', tbs, tlsCa);
        samples.push(performance.now() - start);
      }
      return samples;
    },
  };
}
