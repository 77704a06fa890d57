// electron-builder afterSign hook (electron-builder.yml): notarizes the signed macOS app with
// @electron/notarize when Apple credentials are in the environment, and skips otherwise (local, Linux and
// Windows builds). electron-builder's own notarization is off (mac.notarize: false), so an app is never
// notarized twice. @electron/notarize is imported only when it is about to be used, so loading or
// validating the configuration never needs it.
import { join } from 'node:path';

/**
 * The credentials @electron/notarize (notarytool) takes, from the variables electron-builder documents:
 * an App Store Connect API key (preferred), or an Apple ID with an app-specific password and team.
 */
export function notarizeCredentials(env) {
  if (env.APPLE_API_KEY && env.APPLE_API_KEY_ID && env.APPLE_API_ISSUER) {
    return {
      appleApiKey: env.APPLE_API_KEY,
      appleApiKeyId: env.APPLE_API_KEY_ID,
      appleApiIssuer: env.APPLE_API_ISSUER,
    };
  }
  if (env.APPLE_ID && env.APPLE_APP_SPECIFIC_PASSWORD && env.APPLE_TEAM_ID) {
    return {
      appleId: env.APPLE_ID,
      appleIdPassword: env.APPLE_APP_SPECIFIC_PASSWORD,
      teamId: env.APPLE_TEAM_ID,
    };
  }
  return undefined;
}

export async function afterSign(context, env = process.env, load = () => import('@electron/notarize')) {
  if (context.electronPlatformName !== 'darwin') return { notarized: false, reason: 'not a macOS build' };
  const credentials = notarizeCredentials(env);
  if (!credentials) {
    console.log(
      'Skipping notarization: set APPLE_API_KEY, APPLE_API_KEY_ID and APPLE_API_ISSUER ' +
        '(or APPLE_ID, APPLE_APP_SPECIFIC_PASSWORD and APPLE_TEAM_ID).',
    );
    return { notarized: false, reason: 'no credentials' };
  }
  const appPath = join(context.appOutDir, `${context.packager.appInfo.productFilename}.app`);
  const { notarize } = await load();
  await notarize({ appPath, ...credentials });
  return { notarized: true, appPath };
}

export default afterSign;
