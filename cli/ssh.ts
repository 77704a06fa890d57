// keyport ls, keyport ssh and keyport ssh-config: SSH to the cluster's nodes with the system's OpenSSH
// client. The session key is served by an ssh-agent of keyport's own for the one connection (so no private
// key is written to a file), the node's host certificate is checked against the cluster's host CA (a
// @cert-authority line keyport keeps), and where per-session MFA applies, one touch per call.
//
// Exit codes of `keyport ssh`: the remote command's exit status; 255 when ssh itself fails (connection,
// host verification, authentication: ssh's own code); before ssh runs, keyport's codes (cli/exit-codes.ts:
// 3 access denied, 4 MFA, 9 no such node, ...).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import { KeyportError } from '../proto/errors';
import { parseClusterAddress } from '../client/cluster-trust';
import type { ProfileStore } from '../client/profiles';
import { connectAsProfile, notSignedIn } from '../client/session';
import { startSshAgent } from '../client/ssh-agent';
import type { SshAgent } from '../client/ssh-agent';
import { sshOptions, splitAddr } from '../client/ssh/options';
import { parseSshTarget, prepareSsh } from '../client/ssh/session';
import type { PreparedSsh } from '../client/ssh/session';
import { pivPrompts } from './piv-prompts';
import { withRelogin } from './relogin';
import type { Prompter } from './prompts';
import { securityKeyPrompts } from './security-key-prompts';

async function withAgent<T>(
  home: string,
  prepared: PreparedSsh,
  work: (agent: SshAgent) => Promise<T>,
): Promise<T> {
  const directory = await mkdtemp(join(home, 'ssh-'));
  const agent = await startSshAgent({
    directory,
    identities: () => [{ signer: prepared.signer, certificate: prepared.certificate }],
  });
  try {
    return await work(agent);
  } finally {
    await agent.close();
    await prepared.close();
    await rm(directory, { recursive: true, force: true });
  }
}

function runSsh(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    // Asynchronous: the agent answers ssh from this very process.
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.once('error', (error) =>
      reject(
        new KeyportError(
          'PRECONDITION_FAILED',
          `Cannot run ssh (${error.message}): install OpenSSH's client.`,
        ),
      ),
    );
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 255)));
  });
}

export function registerSshCommands(root: Command, profiles: ProfileStore, prompter: Prompter): void {
  const prompts = () => ({
    mfa: {
      otpCode: () => prompter.text('Enter the code from your authenticator app:'),
      securityKey: securityKeyPrompts(prompter),
    },
    piv: pivPrompts(prompter),
    notice: (message: string) => prompter.say(message),
  });

  root
    .command('ls')
    .description('List the nodes you may reach, with their labels and your logins there')
    .action(() => withRelogin(profiles, () => listNodes(profiles, prompter), prompter));

  root
    .command('ssh <destination> [command...]')
    .description('SSH to a node as [login@]node with the system ssh; a touch where per-session MFA applies')
    .option('-l, --login <login>', 'the login (default: the one in the destination, else your local name)')
    .allowUnknownOption()
    .action(async (destination: string, command: string[], options: { login?: string }) => {
      const target = parseSshTarget(destination, options.login);
      // An expired or unusable session asks Keyport Connect to sign in again where it runs (cli/relogin.ts).
      const prepared = await withRelogin(profiles, () => prepareSsh(profiles, target, prompts()), prompter);
      const code = await withAgent(profiles.home, prepared, (agent) =>
        runSsh([
          ...sshOptions(prepared, agent.socketPath),
          '-l',
          prepared.login,
          splitAddr(prepared.node.addr).host,
          ...(command.length > 0 ? ['--', ...command] : []),
        ]),
      );
      process.exitCode = code;
    });

  root
    .command('ssh-proxy <login> <node>', { hidden: true })
    .description('ProxyCommand for `keyport ssh-config`: the certificate first, then the connection')
    .requiredOption('--agent-socket <path>', 'where to serve the key (ssh_config IdentityAgent)')
    .action(async (login: string, node: string, options: { agentSocket: string }) => {
      // stdout is the SSH stream: every word for the person goes to stderr.
      const prepared = await prepareSsh(profiles, { login, node }, prompts());
      const socketDir = options.agentSocket.slice(0, options.agentSocket.lastIndexOf('/'));
      const socketName = options.agentSocket.slice(options.agentSocket.lastIndexOf('/') + 1);
      const agent = await startSshAgent({
        directory: socketDir,
        socketName,
        identities: () => [{ signer: prepared.signer, certificate: prepared.certificate }],
      });
      const { host, port } = splitAddr(prepared.node.addr);
      try {
        await new Promise<void>((resolve, reject) => {
          const socket = connect(Number(port), host);
          socket.once('connect', () => {
            process.stdin.pipe(socket);
            socket.pipe(process.stdout);
          });
          socket.once('error', (error) =>
            reject(
              new KeyportError(
                'UNAVAILABLE',
                `Node "${node}" at ${prepared.node.addr} is down: ${error.message}`,
              ),
            ),
          );
          socket.once('close', () => resolve());
          process.stdin.once('end', () => socket.end());
        });
      } finally {
        await agent.close();
        await prepared.close();
      }
    });

  root
    .command('ssh-config')
    .description('Print a ~/.ssh/config block so that plain `ssh NODE` goes through keyport for your nodes')
    .action(async () => {
      const profile = await profiles.getProfile();
      if (!profile) throw notSignedIn();
      const api = await connectAsProfile(profiles, profile, undefined, { piv: pivPrompts(prompter) });
      let names: string[];
      try {
        names = (await api.nodes.listNodes({})).nodes.flatMap(({ node }) => (node ? [node.name] : []));
      } finally {
        api.close();
      }
      const cluster = parseClusterAddress(profile.address);
      const keyport = `${process.execPath} ${process.argv[1] ?? 'keyport'}`;
      const home = profiles.home;
      console.log(
        `# Keyport: the nodes of ${cluster.host}:${cluster.port} through keyport (keyport ssh-config).`,
      );
      console.log(`Host ${names.length > 0 ? names.join(' ') : '*.keyport-nodes-none'}`);
      console.log(`    UserKnownHostsFile ${join(home, 'known_hosts')}`);
      console.log('    GlobalKnownHostsFile /dev/null');
      console.log('    StrictHostKeyChecking yes');
      console.log(`    IdentityAgent ${join(home, 'agent-proxy', '%r@%n.sock')}`);
      console.log('    IdentityFile none');
      console.log(
        `    ProxyCommand env KEYPORT_HOME=${home} ${keyport} ssh-proxy --agent-socket ${join(home, 'agent-proxy', '%r@%n.sock')} %r %n`,
      );
    });
}

/** `keyport ls`: the nodes the current profile may reach, with their labels and logins. */
async function listNodes(profiles: ProfileStore, prompter: Prompter): Promise<void> {
  const profile = await profiles.getProfile();
  if (!profile) throw notSignedIn();
  const api = await connectAsProfile(profiles, profile, undefined, { piv: pivPrompts(prompter) });
  try {
    const { nodes } = await api.nodes.listNodes({});
    console.log(`${'Node'.padEnd(24)}${'Address'.padEnd(24)}${'Labels'.padEnd(32)}Logins`);
    for (const { node, logins } of nodes) {
      if (!node) continue;
      const labels = Object.entries(node.labels)
        .map(([key, value]) => `${key}=${value}`)
        .join(',');
      console.log(`${node.name.padEnd(24)}${node.addr.padEnd(24)}${labels.padEnd(32)}${logins.join(',')}`);
    }
  } finally {
    api.close();
  }
}
