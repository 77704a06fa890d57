// The freedesktop.org desktop entry that makes `keyport-connect open-url` the handler of keyport:// links on a
// Linux desktop without the Electron packages (whose own entry electron-builder writes from `protocols`).
// Desktop Entry Specification 1.5, "The Exec key": an argument with a reserved character is quoted, and
// inside quotes `"`, `` ` ``, `$` and `\` take a backslash; `%` is written `%%`; the string-value escape
// (`\\` for `\`) applies on top. `%u` is where the desktop puts the link, as one argument.
export const DESKTOP_FILE_NAME = 'keyport-connect.desktop';
export const LINK_MIME_TYPE = 'x-scheme-handler/keyport';

function execArgument(argument: string): string {
  if (/[\n\r\0]/.test(argument)) throw new Error('A desktop entry argument cannot hold a line break or NUL.');
  const plain = /^[A-Za-z0-9_./:=@+,-]+$/.test(argument);
  const quoted = plain ? argument : `"${argument.replace(/["`$\\]/g, (c) => `\\${c}`)}"`;
  return quoted.replace(/%/g, '%%').replace(/\\/g, '\\\\');
}

/** The entry for a command (program and leading arguments) that takes the link as its last argument. */
export function desktopEntry(command: readonly string[]): string {
  if (command.length === 0) throw new Error('A desktop entry needs a command.');
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Keyport Connect',
    'Comment=Device-bound access to your infrastructure',
    `Exec=${[...command.map(execArgument), '%u'].join(' ')}`,
    'Terminal=false',
    'NoDisplay=true',
    `MimeType=${LINK_MIME_TYPE};`,
    'Categories=Network;Security;',
    '',
  ].join('\n');
}
