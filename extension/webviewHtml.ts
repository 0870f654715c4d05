// The HTML shell of every otfuse webview: strict CSP (nonce script, no remote content), theme CSS, one bundle.
import * as vscode from 'vscode';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { ViewKind } from '../contracts/protocol';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, view: ViewKind, title: string): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const css = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  // CSS the bundle imports (uPlot's), emitted by esbuild next to it.
  const bundled = vscode.Uri.joinPath(extensionUri, 'dist', 'webview.css');
  const bundledLink = fs.existsSync(bundled.fsPath) ? `<link rel="stylesheet" href="${webview.asWebviewUri(bundled)}">\n` : '';
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${bundledLink}<link rel="stylesheet" href="${css}">
<title>${escapeHtml(title)}</title>
</head>
<body data-view="${view}">
<main id="app" aria-live="polite"><p class="muted">Loading…</p></main>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
