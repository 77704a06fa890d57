// keyport-lab: the lab's virtual hardware as commands (bin/keyport-lab.mjs).
//   keyport-lab security-key --socket PATH --state FILE [--touch auto|auto:MS|manual] [--pin PIN] [--aaguid UUID]
//   keyport-lab security-key-ca --state FILE      prints the attestation root and intermediate as PEM
//   keyport-lab replicas [--dir DIR]              a lab PostgreSQL and two keyport-auth replicas on it
import { Command, CommanderError } from 'commander';
import { exportAttestationCa, parseTouchMode, startSoftKey } from './soft-key';

function program(): Command {
  const root = new Command('keyport-lab')
    .description('Keyport lab: virtual hardware for the demo and the tests')
    .exitOverride();

  root
    .command('security-key')
    .description('Serve a software FIDO2 security key (CTAPHID over a UNIX socket)')
    .requiredOption(
      '--socket <path>',
      'UNIX socket for 64-byte CTAPHID reports; control socket at <path>.control',
    )
    .requiredOption(
      '--state <file>',
      'state file (credentials, counter, PIN, attestation CA); created if missing',
    )
    .option('--touch <mode>', 'auto | auto:MS | manual (answered on the control socket)', 'auto')
    .option('--pin <pin>', 'set this PIN if the key has none')
    .option('--aaguid <uuid>', 'AAGUID of the key model')
    .action(async (opts: { socket: string; state: string; touch: string; pin?: string; aaguid?: string }) => {
      const key = await startSoftKey({
        socketPath: opts.socket,
        statePath: opts.state,
        touch: parseTouchMode(opts.touch),
        pin: opts.pin,
        aaguid: opts.aaguid,
      });
      const stop = (): void => {
        void key.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // One JSON line on stdout says the key is ready: what a parent process waits for.
      process.stdout.write(
        `${JSON.stringify({ event: 'ready', socket: key.socketPath, control: key.controlPath, aaguid: key.aaguid })}\n`,
      );
    });

  root
    .command('security-key-ca')
    .description('Print the lab attestation CA (root, then intermediate) as PEM')
    .requiredOption('--state <file>', 'state file of the soft key; created if missing')
    .option('--root-only', 'print only the root certificate')
    .action(async (opts: { state: string; rootOnly?: boolean }) => {
      const ca = await exportAttestationCa(opts.state);
      process.stdout.write(opts.rootOnly ? ca.rootPem : ca.rootPem + ca.intermediatePem);
    });

  root
    .command('replicas')
    .description('Start a lab PostgreSQL and two keyport-auth replicas on it (loopback; Ctrl-C stops all)')
    .option(
      '--dir <dir>',
      'keep the config, KEK files and data dirs in this folder (default: a temporary one)',
    )
    .action(async (opts: { dir?: string }) => {
      const { runReplicasCommand } = await import('../replicas-command');
      await runReplicasCommand(opts);
    });

  return root;
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`keyport-lab: ${(err as Error).message}`);
  process.exit(1);
}
