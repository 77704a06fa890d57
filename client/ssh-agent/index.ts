export { agentDirectory, DEFAULT_SOCKET_NAME, startSshAgent } from './server';
export type { AgentIdentity, IdentityProvider, SshAgent, SshAgentEvent, SshAgentOptions } from './server';
export { profileIdentities } from './profile-identities';
export type { OpenedSigner, ProfileIdentitiesOptions, ProfileIdentityProvider } from './profile-identities';
export { AgentProtocolError, MAX_MESSAGE_BYTES } from './protocol';
export type { AgentProtocolErrorReason } from './protocol';
