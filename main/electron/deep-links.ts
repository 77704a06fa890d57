// keyport:// links. Their handling (parse into a plain result that only pre-fills a form) comes with a later
// issue; until then a link is noticed and ignored. Its text is never logged: a link may carry a token.
export const DEEP_LINK_SCHEME = 'keyport';

/** The first keyport:// argument of a command line (how Windows and Linux deliver a link). */
export function deepLinkInArgv(argv: readonly string[]): string | undefined {
  return argv.find((argument) => argument.toLowerCase().startsWith(`${DEEP_LINK_SCHEME}://`));
}

export function ignoreDeepLink(
  link: string | undefined,
  log: (message: string) => void = console.warn,
): void {
  if (link !== undefined) log('Ignored a keyport:// link: Keyport Connect does not open links yet.');
}
