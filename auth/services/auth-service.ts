// AuthService: cluster discovery, signup (signup-service.ts) and the two-round-trip login
// (login-service.ts). Needs no client certificate.
import type { ClusterInfo } from '../../proto/gen/keyport/v1/auth';
import type { ServiceContext } from '../context';
import { listConnectorViews } from '../connectors';
import { loadCap } from '../policy';
import { loginHandlers } from './login-service';
import { signupHandlers } from './signup-service';
import { ssoHandlers } from './sso-service';

export function authService(ctx: ServiceContext) {
  return {
    async getClusterInfo(): Promise<ClusterInfo> {
      const cap = await loadCap(ctx.store);
      return {
        clusterName: ctx.clusterName,
        version: ctx.version,
        publicAddr: ctx.publicAddr,
        caPin: ctx.caPin,
        secondFactors: cap.secondFactors,
        allowPasswordless: cap.allowPasswordless,
        connectorName: cap.connectorName ?? '',
        webauthnRpId: cap.webauthnRpId ?? '',
        deviceTrustMode: cap.device_trust.mode,
        deviceAutoEnroll: cap.device_trust.auto_enroll,
        authType: cap.type,
        authConnectors: await listConnectorViews(ctx.store),
      };
    },

    ...signupHandlers(ctx),
    ...loginHandlers(ctx),
    ...ssoHandlers(ctx),
  };
}
