// The webview side of contracts/protocol.ts: requests that resolve with the host's reply, and typed host events.
import type { HostEvent, HostEventType, HostToWebview, RequestMap, RequestName } from '../contracts/protocol';

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; getState(): unknown; setState(s: unknown): void };
export const vscodeApi = acquireVsCodeApi();

let nextId = 0;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const listeners = new Map<HostEventType, ((e: HostEvent) => void)[]>();

export function request<K extends RequestName>(method: K, params: RequestMap[K]['params']): Promise<RequestMap[K]['result']> {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    vscodeApi.postMessage({ kind: 'request', id, method, params });
  });
}

export function on<T extends HostEventType>(type: T, fn: (e: Extract<HostEvent, { type: T }>) => void): void {
  const list = listeners.get(type) ?? [];
  list.push(fn as (e: HostEvent) => void);
  listeners.set(type, list);
}

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const m = event.data;
  if (m?.kind === 'reply') {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error ?? 'request failed'));
  } else if (m?.kind === 'event') {
    for (const fn of listeners.get(m.type) ?? []) fn(m);
  }
});
