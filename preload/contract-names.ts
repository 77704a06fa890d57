// The names of the contract's methods and events, in a module of their own so the preload and the browser
// bridge (which need the names, never the schemas) do not bundle zod. preload/contract.ts re-exports them
// and checks at compile time that its schemas and event payloads cover exactly these names.
export const methodNames = [
  'clusters.add',
  'clusters.list',
  'clusters.remove',
  'auth.login',
  'auth.loginPasswordless',
  'auth.logout',
  'auth.status',
  'auth.signInAgain',
  'auth.sessionNotices',
  'auth.connectors',
  'auth.loginSso',
  'mfa.list',
  'mfa.add',
  'mfa.remove',
  'device.status',
  'device.enroll',
  'nodes.list',
  'deepLinks.current',
  'deepLinks.dismiss',
  'terminals.open',
  'terminals.input',
  'terminals.resize',
  'terminals.close',
  'deepLinks.inspect',
  'deepLinks.authorize',
  'prompts.answer',
  'prompts.cancel',
  'prompts.current',
  'app.info',
  'app.ready',
] as const;
export type MethodName = (typeof methodNames)[number];

export const eventNames = [
  'onPrompt',
  'onPromptClosed',
  'onProfileChanged',
  'onDeepLink',
  'onTerminalData',
  'onTerminalEnded',
  'onSessionNotice',
] as const;
export type EventName = (typeof eventNames)[number];
