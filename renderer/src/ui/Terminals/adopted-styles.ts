// xterm.js writes its theme colours and cell sizes into <style> elements it appends to the terminal. The
// app's CSP (main/csp.ts: style-src 'self', no 'unsafe-inline') refuses inline <style> elements, so their
// rules are mirrored into constructable stylesheets (document.adoptedStyleSheets): CSSOM, which CSP does not
// govern, and which takes no markup. What a terminal's rules say comes from xterm's own code and the theme
// the app sets, never from the server's bytes. The CSP stays as strict as it was.
const mirrored = new Map<HTMLStyleElement, CSSStyleSheet>();
let base: CSSStyleSheet[] | null = null;

function publish(): void {
  base ??= [...document.adoptedStyleSheets];
  for (const element of [...mirrored.keys()]) if (!element.isConnected) mirrored.delete(element);
  document.adoptedStyleSheets = [...base, ...mirrored.values()];
}

function mirror(root: HTMLElement): void {
  for (const element of root.querySelectorAll('style')) {
    let sheet = mirrored.get(element);
    if (!sheet) mirrored.set(element, (sheet = new CSSStyleSheet()));
    sheet.replaceSync(element.textContent ?? '');
  }
  publish();
}

/** Mirrors the <style> elements under `root` (as they appear and change) until the returned stop. */
export function adoptInlineStyles(root: HTMLElement): () => void {
  const supported =
    typeof CSSStyleSheet !== 'undefined' &&
    'replaceSync' in CSSStyleSheet.prototype &&
    'adoptedStyleSheets' in document;
  if (!supported) return () => {};
  const observer = new MutationObserver(() => mirror(root));
  observer.observe(root, { subtree: true, childList: true, characterData: true });
  mirror(root);
  return () => {
    observer.disconnect();
    for (const element of root.querySelectorAll('style')) mirrored.delete(element);
    publish();
  };
}
