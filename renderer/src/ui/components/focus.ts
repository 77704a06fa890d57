// Focus helpers for modal dialogs: which elements Tab reaches, and which dialog layer is on top. The
// layer on top is the only part of the page that is not inert, so neither a pointer nor assistive
// technology reaches what lies behind a modal dialog.

const FOCUSABLE = [
  'a[href]',
  'button:not([disabled])',
  'input:not([disabled]):not([type="hidden"])',
  'select:not([disabled])',
  'textarea:not([disabled])',
  '[tabindex]:not([tabindex="-1"])',
].join(',');

export function focusableIn(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((element) => !element.hidden);
}

export function canTakeFocus(element: Element | null): element is HTMLElement {
  return (
    element instanceof HTMLElement &&
    element.isConnected &&
    element !== element.ownerDocument.body &&
    !element.closest('[inert]') &&
    !(element as HTMLButtonElement).disabled
  );
}

const layers: HTMLElement[] = [];
const madeInert = new Set<HTMLElement>();

function applyLayers(): void {
  for (const element of madeInert) element.inert = false;
  madeInert.clear();
  const top = layers.at(-1);
  if (!top) return;
  for (const child of top.ownerDocument.body.children) {
    if (child === top || !(child instanceof HTMLElement) || child.inert) continue;
    child.inert = true;
    madeInert.add(child);
  }
}

export function pushLayer(layer: HTMLElement): void {
  layers.push(layer);
  applyLayers();
}

export function removeLayer(layer: HTMLElement): void {
  const index = layers.indexOf(layer);
  if (index >= 0) layers.splice(index, 1);
  applyLayers();
}

export function topLayer(): HTMLElement | undefined {
  return layers.at(-1);
}

/**
 * After a wait, gives focus back to `target` when the wait lost it: a button disabled while busy drops
 * focus to the body, and a dialog that closes then falls back to the main region.
 */
export function recoverFocus(target: HTMLElement | null): void {
  const active = document.activeElement;
  if (!active || active === document.body || active.tagName === 'MAIN') target?.focus();
}
