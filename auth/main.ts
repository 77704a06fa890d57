// The keyport-auth command.
import { Command } from 'commander';
import { KeyportError } from '../proto/errors';
import { CaError } from './ca/errors';
import { loadAuthConfig } from './config';
import { startAuthServer, VERSION } from './server';

const program = new Command('keyport-auth')
  .description('Keyport auth service: CAs, users, roles, MFA and login over gRPC/TLS')
  .version(VERSION);

program
  .command('start')
  .description('Start the auth service (creates the cluster CAs on first start)')
  .option(
    '-c, --config <file>',
    'YAML config file (keyport: data_dir, storage; auth_service: listen_addr, public_addr, cluster_name, authentication)',
  )
  .option(
    '-d, --data-dir <dir>',
    'data directory: the admin identity, and the database (with the sealed CA keys) unless keyport.storage is postgresql',
  )
  .option(
    '--kek-file <file>',
    'key-encryption key that seals the CA keys and TOTP seeds (created 0600 on first start; default: <data dir>.kek, outside the data dir)',
  )
  .option('-l, --listen <host:port>', 'address to listen on; port 0 picks a free port', undefined)
  .option('--public-addr <host:port>', 'address clients use; its host is in the TLS certificate')
  .option('--web-listen <host:port>', 'serve the web UI over HTTPS on this address (web_listen_addr)')
  .option(
    '--web-public-addr <host:port>',
    "the web UI's address in browsers, its origin (default: localhost:PORT for a loopback listener)",
  )
  .option('--cluster-name <name>', 'cluster name (default: the public address host)')
  .action(async (options) => {
    // Everything the service writes (database, CA keys, admin identity) is for its own user only.
    process.umask(0o077);
    const config = await loadAuthConfig(options);
    const server = await startAuthServer(config, (line) => console.error(line));
    const stop = (signal: string) => {
      console.error(`${signal}: stopping`);
      server.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Handlers first: stdout to a pipe is synchronous on Linux, so a supervisor may signal as soon as it
    // reads the address.
    console.log(`CA pin: ${server.caPin}`);
    if (server.webOrigin) console.log(`web UI on ${server.webOrigin}`);
    console.log(`listening on ${server.address}`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CaError && error.code === 'INVALID_ARGUMENT') {
    console.error(`keyport-auth: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof KeyportError) {
    console.error(`keyport-auth: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
