// The host↔webview contract (contracts/protocol.ts) has no declared-but-unused messages: every request is
// answered by a host handler and sent by the webview; every event type is sent by the host and handled by the
// webview. Checked on the sources, so a new message without both ends fails here.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

function sources(dir: string): string {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
}

test('every request has a host handler and a webview caller; every event a sender and a listener', () => {
  const protocol = fs.readFileSync('contracts/protocol.ts', 'utf8');
  const requestBlock = protocol.slice(protocol.indexOf('export interface RequestMap'), protocol.indexOf('export type RunAction'));
  const requests = [...requestBlock.matchAll(/^\s{2}(\w+): \{ params/gm)].map((m) => m[1]);
  const eventBlock = protocol.slice(protocol.indexOf('export type HostEvent ='), protocol.indexOf('export type HostEventType'));
  const events = [...eventBlock.matchAll(/type: '(\w+)'/g)].map((m) => m[1]);
  assert.ok(requests.length >= 5 && events.length >= 8, `${requests} / ${events}`);
  const host = sources('extension');
  const webview = sources('webview');
  for (const r of requests) {
    assert.match(host, new RegExp(`\\b${r}: (async )?\\(`), `request '${r}' has no host handler`);
    assert.match(webview, new RegExp(`request\\('${r}'`), `request '${r}' is never sent by the webview`);
  }
  for (const e of events) {
    assert.match(host, new RegExp(`type: '${e}'`), `event '${e}' is never sent by the host`);
    assert.match(webview, new RegExp(`on\\('${e}'`), `event '${e}' has no webview listener`);
  }
  // Every RunAction the webview can send is handled somewhere on the host.
  const actions = [...protocol.slice(protocol.indexOf('export type RunAction'), protocol.indexOf('export type RequestName')).matchAll(/'(\w+)'/g)].map(
    (m) => m[1],
  );
  for (const a of actions) assert.match(host, new RegExp(`\\b${a}\\b`), `action '${a}' is not handled by the host`);
});
