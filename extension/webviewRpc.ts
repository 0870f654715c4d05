// The host side of the webview contract (contracts/protocol.ts): answers each request with one reply, and sends
// typed events.
import * as vscode from 'vscode';
import type { HostEvent, RequestMap, RequestName, WebviewToHost } from '../contracts/protocol';

export type Handlers = { [K in RequestName]?: (params: RequestMap[K]['params']) => Promise<RequestMap[K]['result']> | RequestMap[K]['result'] };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type EventBody = DistributiveOmit<HostEvent, 'kind'>;

export function serve(webview: vscode.Webview, handlers: Handlers, log?: vscode.LogOutputChannel): vscode.Disposable {
  return webview.onDidReceiveMessage(async (m: WebviewToHost) => {
    if (m?.kind !== 'request') return;
    const handler = handlers[m.method] as ((p: unknown) => unknown) | undefined;
    try {
      if (!handler) throw new Error(`no handler for '${m.method}' here`);
      const value = await handler(m.params);
      void webview.postMessage({ kind: 'reply', id: m.id, ok: true, value });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log?.error(`webview request ${m.method}: ${message}`);
      void webview.postMessage({ kind: 'reply', id: m.id, ok: false, error: message });
    }
  });
}

export function send(webview: vscode.Webview, event: EventBody): Thenable<boolean> {
  return webview.postMessage({ kind: 'event', ...event });
}
