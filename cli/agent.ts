// `keyport agent`: serves the current session's key to OpenSSH through an ssh-agent socket of Keyport's own
// (client/ssh-agent), in the foreground until Ctrl-C or SIGTERM. The key is never written to a file: the
// agent signs through the session's signer (the keychain's key, or the PIV card's, which asks for its PIN
// and touch here). It follows the profile: a relogin or a logout shows at the very next request.
import type { Command } from 'commander';
import { openProfileSigner } from '../client/session';
import type { ProfileStore } from '../client/profiles';
import { agentDirectory, profileIdentities, startSshAgent } from '../client/ssh-agent';
import { pivPrompts } from './piv-prompts';
import type { Prompter } from './prompts';

export function registerAgentCommand(root: Command, profiles: ProfileStore, prompter: Prompter): void {
  root
    .command('agent')
    .description('Serve your session key to OpenSSH (ssh-add, ssh) through an ssh-agent socket, until Ctrl-C')
    .option('--socket-dir <dir>', 'the directory of the socket (default: <KEYPORT_HOME>/agent)')
    .action(async (options: { socketDir?: string }) => {
      const identities = profileIdentities(profiles, {
        signerFor: (store, profile) => openProfileSigner(store, profile, pivPrompts(prompter)),
      });
      const agent = await startSshAgent({
        directory: options.socketDir ?? agentDirectory(profiles.home),
        identities,
      });
      // One line for a shell to eval, the socket's path for SSH_AUTH_SOCK.
      console.log(`SSH_AUTH_SOCK=${agent.socketPath}; export SSH_AUTH_SOCK;`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await agent.close();
      await identities.close();
    });
}
