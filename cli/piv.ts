// keyport piv: the PIV card's own PIN, as the person manages it (a blocked PIN is unblocked with the PUK).
import type { Command } from 'commander';
import { openPivSession } from '../client/hardware/piv/session';
import { unblockPivPin } from '../client/hardware/piv/pin';
import type { Prompter } from './prompts';
import { pivUnblockPrompts } from './piv-prompts';

export function registerPivCommands(root: Command, prompter: Prompter): void {
  const piv = root.command('piv').description('Your PIV card (YubiKey) for hardware-backed session keys');

  piv
    .command('unblock')
    .description('Unblock the PIV PIN (or replace a forgotten one) with the PUK, and set a new PIN')
    .option('--reader <name>', 'the smart card reader (default: the first one with a PIV card)')
    .action(async (options: { reader?: string }) => {
      const session = await openPivSession(options.reader ? { reader: options.reader } : {});
      try {
        await unblockPivPin(session, pivUnblockPrompts(prompter));
      } finally {
        await session.close();
      }
      console.log('The PIN of your PIV card is set and unblocked.');
    });
}
