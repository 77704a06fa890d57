// The relying party's own refusals, apart from a cluster: an http issuer (the connector schema refuses one
// when it is written; a connector that reached the relying party anyway is refused again), and an IdP that
// does not answer, said as UNAVAILABLE naming the connector and issuer.
import { describe, expect, it } from 'vitest';
import type { OidcConnector } from '../../proto/resources/schema';
import { relyingParty } from './relying-party';

const connector = (issuer: string): OidcConnector =>
  ({
    kind: 'oidc',
    version: 'v3',
    metadata: { name: 'corp' },
    spec: {
      issuer_url: issuer,
      client_id: 'keyport',
      client_secret: 'secret',
      redirect_url: ['https://localhost:3080/v1/webapi/oidc/callback'],
      claims_to_roles: [{ claim: 'groups', value: 'admins', roles: ['editor'] }],
    },
  }) as OidcConnector;

const request = { state: 's', nonce: 'n', pkceVerifier: 'v'.repeat(43) };

describe('the OIDC relying party', () => {
  it('refuses an http issuer before any request: PRECONDITION_FAILED naming the fix', async () => {
    const rp = relyingParty({ now: Date.now });
    await expect(rp.authorizationUrl(connector('http://127.0.0.1:9'), request)).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringContaining('must be https'),
    });
    await expect(
      rp.exchange(connector('http://127.0.0.1:9'), new URL('https://localhost/cb?code=c&state=s'), request),
    ).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
  });

  it('says an IdP that does not answer is UNAVAILABLE, with the connector and the issuer', async () => {
    const rp = relyingParty({ now: Date.now, extraCaPem: undefined });
    await expect(rp.authorizationUrl(connector('https://127.0.0.1:9'), request)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(
        'The identity provider of "corp" (https://127.0.0.1:9) cannot be reached',
      ),
    });
  });
});
