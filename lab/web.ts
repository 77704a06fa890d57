// The web UI in the lab: an HTTPS client for keyport-auth's web API that trusts the cluster CA (for tests
// that send what a hostile page or script would), and the lab security key's credentials moved into
// Chromium's virtual authenticator (CDP WebAuthn), so the browser answers for a user signed up with it.
import { createPrivateKey } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { LabCluster } from './cluster';
import type { SoftKeyState } from './security-key/state';

export interface WebResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

export interface WebRequestOptions {
  body?: unknown;
  /** Sent as is (a string body is not JSON-encoded). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Origin header; the web UI's own by default, `null` to send none. */
  origin?: string | null;
}

/** Requests to a cluster's web listener, as the web UI's page would send them unless told otherwise. */
export async function webClient(cluster: LabCluster) {
  if (!cluster.webOrigin) throw new Error('the cluster was started without --web-listen');
  const origin = cluster.webOrigin;
  const url = new URL(origin);
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  return {
    origin,
    request(method: string, path: string, options: WebRequestOptions = {}): Promise<WebResponse> {
      const body = options.rawBody ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined);
      const headers: Record<string, string> = {
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...(options.origin === null ? {} : { Origin: options.origin ?? origin }),
        'User-Agent': 'keyport-lab-test',
        ...options.headers,
      };
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: Number(url.port),
            servername: url.hostname,
            ca: identity.caCertPem,
            method,
            path,
            headers: { Host: url.host, ...headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let json: Record<string, unknown> = {};
              try {
                json = JSON.parse(text) as Record<string, unknown>;
              } catch {
                // not JSON: the app's files
              }
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

/**
 * A virtual CTAP2 authenticator in the page's browser that holds the lab key's credentials (its state file):
 * the same credential ids, keys and user handles, its sign counter where the lab key's is, user
 * verification answered yes (the lab key's PIN stands for it). Returns the authenticator's id.
 */
export async function virtualKeyFromLabKey(page: Page, statePath: string): Promise<string> {
  const state = JSON.parse(await readFile(statePath, 'utf8')) as SoftKeyState;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  for (const credential of state.credentials) {
    const der = createPrivateKey(credential.privateKeyPem).export({ type: 'pkcs8', format: 'der' });
    await cdp.send('WebAuthn.addCredential', {
      authenticatorId,
      credential: {
        credentialId: Buffer.from(credential.id, 'base64url').toString('base64'),
        isResidentCredential: credential.rk,
        rpId: credential.rpId,
        privateKey: der.toString('base64'),
        ...(credential.userId
          ? { userHandle: Buffer.from(credential.userId, 'base64url').toString('base64') }
          : {}),
        signCount: state.signCount,
      },
    });
  }
  return authenticatorId;
}
