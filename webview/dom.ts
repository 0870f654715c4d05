// Small DOM helpers shared by the views (no framework; CSP-safe: no inline styles or handlers in markup).
export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Record<string, unknown>, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Record<string, unknown>, ...children: Child[]): HTMLElement;
export function h(tag: string, props: Record<string, unknown> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export const pct = (x?: number | null) => (x === undefined || x === null || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`);
export const basename = (p: string) => p.split(/[\\/]/).pop() ?? p;

export function button(
  label: string,
  onclick: () => void,
  appearance: 'primary' | 'secondary' | 'icon' = 'secondary',
  id?: string,
  title?: string,
): HTMLElement {
  return h('vscode-button', { appearance, onclick, id, 'aria-label': title ?? label, title: title ?? label }, label);
}

export function section(title: string, id: string, ...children: Child[]): HTMLElement {
  return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), ...children);
}

/** A small readable status badge (text + border in the status colour: legible in every theme). */
export function statusTag(status: string, id?: string): HTMLElement {
  return h('span', { class: `status status-${status}`, id, role: 'status' }, status.toUpperCase());
}

/** PNG bytes of a canvas (for "Export PNG"). */
export function canvasPng(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? b.arrayBuffer().then((a) => resolve(new Uint8Array(a)), reject) : reject(new Error('no image'))), 'image/png'),
  );
}

export function themeColour(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}
