// The keyport command: sign up, log in, status, logout, and cluster administration.
import { Command, CommanderError, Option } from 'commander';
import { KeyportError } from '../proto/errors';
import { loginPasswordless, loginWithPassword, logout } from '../client/ceremonies/login';
import { loginWithSso } from '../client/ceremonies/sso-login';
import { openSignInUrl } from './browser';
import { securityKeyPrompts } from './security-key-prompts';
import { pivPrompts } from './piv-prompts';
import { signup } from '../client/ceremonies/signup';
import { formatClusterAddress, parseClusterAddress, parseClusterAddresses } from '../client/cluster-trust';
import { KeyStoreError } from '../client/keystore';
import { Ctap2Error } from '../client/hardware/fido/ctap2';
import { CtaphidError } from '../client/hardware/fido/ctaphid';
import { ProfileStore } from '../client/profiles';
import { connectAsProfile, notSignedIn } from '../client/session';
import type { Profile } from '../client/profiles';
import { registerAdminCommands } from './admin';
import { registerMfaCommands } from './mfa';
import { registerAgentCommand } from './agent';
import { registerSshCommands } from './ssh';
import { registerDeviceCommands } from './devices';
import { registerPivCommands } from './piv';
import { reloginThroughApp, setAppRelogin, withRelogin } from './relogin';
import { cancelOnCtrlC } from './cancel';
import { EXIT, exitCodeOf } from './exit-codes';
import { parseDurationSeconds, formatRemaining } from './format';
import { readStdinLine, terminalPrompter } from './prompts';
import type { Prompter } from './prompts';
import { now } from '../proto/clock';

const VERSION = '0.1.0';

// grpc-js always sends the target host as TLS SNI, and Node warns (DEP0123) when that is an IP address, as it
// is for a cluster reached by IP. The certificate is still checked against the IP SAN; only the notice goes.
process.removeAllListeners('warning');
process.on('warning', (warning: NodeJS.ErrnoException) => {
  if (warning.code !== 'DEP0123') console.error(`${warning.name}: ${warning.message}`);
});

export function trustPrompt(prompter: Prompter) {
  return {
    async confirmCaPin(address: string, caPin: string) {
      prompter.say(`The cluster at ${address} presents this CA:`);
      prompter.say(`  CA pin: ${caPin}`);
      prompter.say('Compare it with the pin your admin gave you (keyport admin status on the auth host).');
      return prompter.confirm('Trust this cluster?');
    },
  };
}

function program(): Command {
  const prompter = terminalPrompter();
  const profiles = new ProfileStore();
  const root = new Command('keyport')
    .description('Keyport: device-bound access to your infrastructure')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride()
    .option('--no-app-relogin', 'never ask Keyport Connect to sign in again for this command')
    .hook('preAction', () => setAppRelogin(root.opts().appRelogin !== false));

  root
    .command('login')
    .description('Sign in with a password and a second factor; stores certificates in the profile')
    .option(
      '--cluster <host:port[,host:port...]>',
      'cluster address, or every auth server replica in order (default: the current profile)',
    )
    .option('--user <name>', 'user name (default: the current profile, then $USER)')
    .option('--ca-pin <sha256:hex>', 'trust exactly this CA instead of asking')
    .option('--ttl <duration>', 'certificate lifetime, e.g. 1h (capped by your roles)')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option(
      '--auth <kind>',
      "local (password + second factor), passwordless (security key and its PIN), or an SSO connector's name (keyport admin get oidc)",
    )
    .addOption(
      new Option(
        '--browser <browser>',
        'with an SSO connector: none prints the sign-in URL instead of opening it',
      ).choices(['default', 'none']),
    )
    .addOption(
      new Option('--mfa <kind>', 'second factor to use when several are allowed')
        .choices(['auto', 'key', 'otp'])
        .default('auto'),
    )
    .addOption(
      new Option('--keystore <kind>', 'where the session key lives')
        .choices(['keychain', 'file'])
        .default('keychain'),
    )
    .option(
      '--piv-slot <slot>',
      "PIV slot for a hardware-backed session key (9a, 9c, 9d, 9e; default: KEYPORT_PIV_SLOT, the cluster's, the policy's)",
    )
    .option('--piv-overwrite', 'replace a key in that PIV slot that Keyport did not make')
    .action(async (options) => {
      const current = await profiles.getProfile();
      const clusterText: string | undefined = options.cluster ?? current?.address;
      if (!clusterText) throw new KeyportError('INVALID_ARGUMENT', 'Give the cluster: --cluster HOST:PORT.');
      const user: string = options.user ?? current?.user ?? process.env.USER ?? '';
      // Several replicas: the first address is the cluster's (the profile's and the trusted cluster's key).
      const replicas = parseClusterAddresses(clusterText);
      const address = replicas[0] as (typeof replicas)[number];
      const trusted = await profiles.getTrustedCluster(address);
      if (options.auth !== undefined && !['local', 'passwordless'].includes(options.auth)) {
        const ctrlC = cancelOnCtrlC('Login cancelled: nothing was saved.');
        const profile = await loginWithSso({
          profiles,
          address,
          ...(replicas.length > 1 ? { replicas } : {}),
          caPin: options.caPin,
          ttlSeconds: options.ttl ? parseDurationSeconds(options.ttl, '--ttl') : undefined,
          keystore: options.keystore,
          connector: options.auth,
          signal: ctrlC.signal,
          prompts: {
            ...trustPrompt(ctrlC.prompter(prompter)),
            notice: (message: string) => prompter.say(message),
            openBrowser: (url: string) => openSignInUrl(url, options.browser === 'none', prompter),
            securityKey: securityKeyPrompts(ctrlC.prompter(prompter)),
          },
        });
        printProfile(profile);
        return;
      }
      const passwordless =
        options.auth === 'passwordless' ||
        (options.auth === undefined && trusted?.connectorName === 'passwordless');
      // Ctrl-C cancels the login (the questions it waits on too), which takes back its session key.
      const ctrlC = cancelOnCtrlC('Login cancelled: nothing was saved.');
      const asking = ctrlC.prompter(prompter);
      const common = {
        profiles,
        address,
        ...(replicas.length > 1 ? { replicas } : {}),
        caPin: options.caPin,
        ttlSeconds: options.ttl ? parseDurationSeconds(options.ttl, '--ttl') : undefined,
        keystore: options.keystore,
        signal: ctrlC.signal,
        prompts: {
          ...trustPrompt(asking),
          password: (name: string) =>
            options.passwordStdin
              ? ctrlC.unlessCancelled(readStdinLine('the password'))
              : asking.secret(`Enter password for Keyport user ${name}:`),
          otpCode: () => asking.text('Enter an OTP code from your authenticator app:'),
          notice: (message: string) => prompter.say(message),
          securityKey: securityKeyPrompts(asking),
        },
        hardwareKey: {
          prompts: pivPrompts(asking),
          ...(options.pivSlot ? { slot: options.pivSlot } : {}),
          ...(process.env.KEYPORT_PIV_SLOT ? { envSlot: process.env.KEYPORT_PIV_SLOT } : {}),
          overwrite: options.pivOverwrite ?? false,
        },
      };
      const profile = passwordless
        ? await loginPasswordless({ ...common, user: options.user })
        : await loginWithPassword({ ...common, user, mfa: options.mfa });
      printProfile(profile);
    });

  root
    .command('signup')
    .description('Set your password and register your first MFA device with a one-time signup token')
    .requiredOption('--cluster <host:port>', 'cluster address')
    .requiredOption('--token <token>', 'the signup token from your admin')
    .option('--ca-pin <sha256:hex>', 'trust exactly this CA instead of asking')
    .addOption(
      new Option('--device <kind>', 'first MFA device: otp (authenticator app) or webauthn (security key)')
        .choices(['otp', 'webauthn'])
        .default('otp'),
    )
    .option('--device-name <name>', 'name of the first MFA device (default: otp, or security-key)')
    .option('--passwordless', 'register the security key as a passkey, to sign in without a password')
    .action(async (options) => {
      const result = await signup({
        profiles,
        address: parseClusterAddress(options.cluster),
        token: options.token,
        caPin: options.caPin,
        deviceName: options.deviceName,
        deviceType: options.device,
        passwordless: options.passwordless ?? false,
        prompts: {
          ...trustPrompt(prompter),
          async newPassword(user) {
            const first = await prompter.secret(`Choose a password for ${user} (at least 12 characters):`);
            if (process.stdin.isTTY && first !== (await prompter.secret('Confirm the password:'))) {
              throw new KeyportError('INVALID_ARGUMENT', 'The passwords do not match.', {
                fieldPath: 'password',
              });
            }
            return first;
          },
          async showTotpEnrollment(totp) {
            prompter.say('Add this OTP device to your authenticator app (scan or paste the URI):');
            prompter.say(`  ${totp.otpauthUri}`);
            prompter.say(`  secret: ${totp.secret}`);
          },
          otpCode: () => prompter.text('Enter the code your authenticator app shows now:'),
          securityKey: securityKeyPrompts(prompter),
        },
      });
      console.log(
        `User "${result.user}" signed up. Sign in with: keyport login --cluster ${options.cluster} --user ${result.user}`,
      );
    });

  root
    .command('status')
    .description('Show who you are signed in as, where, and until when')
    .option('--check', 'also ask the cluster to accept the session (signs a call with the session key)')
    .action(async (options) => {
      const profile = await profiles.getProfile();
      if (!profile) throw notSignedIn();
      printProfile(profile);
      if (profile.expiresMs <= now()) {
        // Keyport Connect, where it runs, signs in again; without it the expiry is the answer, as before.
        const renewed = await reloginThroughApp(profiles, profile, prompter);
        if (!renewed) {
          process.exitCode = EXIT.expired;
          return;
        }
        console.log('Signed in again in Keyport Connect.');
        printProfile(renewed);
      }
      if (options.check) {
        // A session below today's key policy relogs in with the card, then is checked again.
        await withRelogin(
          profiles,
          async () => {
            const current = (await profiles.getProfile()) ?? profile;
            const api = await connectAsProfile(profiles, current, undefined, {
              notice: (message) => prompter.say(message),
              piv: pivPrompts(prompter),
            });
            try {
              const status = await api.user.getStatus({});
              console.log(`  ${'Session'.padEnd(14)}accepted by ${status.clusterName} as ${status.user}`);
            } finally {
              api.close();
            }
          },
          prompter,
        );
      }
    });

  root
    .command('logout')
    .description('Remove your certificates and the session key from the keychain')
    .option('--cluster <host:port>', 'cluster address (default: the current profile)')
    .option('--forget', 'also forget the cluster’s trusted CA')
    .action(async (options) => {
      // Given as replicas, the cluster is its first address.
      const address = options.cluster ? parseClusterAddresses(options.cluster)[0] : undefined;
      const key = address ? formatClusterAddress(address) : undefined;
      const removed = await logout(profiles, key);
      if (options.forget && (key ?? removed?.address))
        await profiles.forgetCluster((key ?? removed?.address) as string);
      console.log(removed ? `Logged out ${removed.user} from ${removed.address}.` : 'Not signed in.');
    });

  registerMfaCommands(root, profiles, prompter);
  registerDeviceCommands(root, profiles, prompter);
  registerAgentCommand(root, profiles, prompter);
  registerPivCommands(root, prompter);
  registerSshCommands(root, profiles, prompter);
  registerAdminCommands(root, profiles, prompter);
  return root;
}

function printProfile(profile: Profile): void {
  const rows: [string, string][] = [
    ['Cluster', `${profile.cluster} (${profile.address})`],
    ['User', profile.user],
    ['Roles', profile.roles.join(', ') || '-'],
    ['Logins', profile.logins.join(', ') || '-'],
    [
      'Valid until',
      `${new Date(profile.expiresMs).toISOString()} [${formatRemaining(profile.expiresMs - now())}]`,
    ],
    ['MFA verified', profile.mfaVerified ? 'yes' : 'no'],
    profile.hardwareKey
      ? [
          'Key',
          `PIV slot ${profile.hardwareKey.slot}${
            profile.hardwareKey.serial !== undefined ? ` of card ${profile.hardwareKey.serial}` : ''
          }, ${profile.hardwareKey.policy} (touch ${profile.hardwareKey.touchPolicy}, PIN ${profile.hardwareKey.pinPolicy})`,
        ]
      : ['Key stored in', profile.keystore === 'keychain' ? 'OS keychain' : 'file keystore'],
    ...(profile.device
      ? ([
          ['Device', `${profile.device.assetTag} (trusted)`],
          ['Extensions', 'keyport-device-asset-tag, keyport-device-credential-id, keyport-device-id'],
        ] as [string, string][])
      : []),
  ];
  console.log(`> Profile ${profile.address}`);
  for (const [label, value] of rows) console.log(`  ${label.padEnd(14)}${value}`);
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof KeyportError || error instanceof KeyStoreError) {
      console.error(`ERROR: ${error.message}`);
      if (
        error instanceof KeyportError &&
        error.fields.fieldPath &&
        !error.message.includes(error.fields.fieldPath)
      ) {
        console.error(`  field: ${error.fields.fieldPath}`);
      }
      return exitCodeOf(error.code);
    }
    if (error instanceof Ctap2Error || error instanceof CtaphidError) {
      // The security key's own refusal (PIN blocked, not touched in time, ...): its message says what to do.
      console.error(`ERROR: ${error.message}`);
      return error.code === 'CANCELLED' ? EXIT.cancelled : EXIT.mfa;
    }
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.invalidInput;
    console.error(error);
    return EXIT.failure;
  }
}

main(process.argv).then((code) => process.exit(code));
