// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** Non-empty and free of control characters: safe to print on one line and to put in a name. */
export function isPlainText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !CONTROL_CHARACTERS.test(value);
}
