// Shared by the suites: the activated extension's API and the example files of the test workspace.
import * as vscode from 'vscode';
import path from 'node:path';
import fs from 'node:fs';
import type { OtfuseApi } from '../../extension/extension';

export const EXTENSION_ID = 'otfuse.otfuse';

export async function api(): Promise<OtfuseApi> {
  const ext = vscode.extensions.getExtension<OtfuseApi>(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not loaded`);
  return ext.isActive ? ext.exports : ext.activate();
}

export function workspaceDir(): string {
  const ws = process.env.OTFUSE_TEST_WORKSPACE ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!ws) throw new Error('no workspace folder');
  return ws;
}

export function example(rel: string): string {
  const ws = workspaceDir();
  const inWs = path.join(ws, 'examples', rel);
  if (fs.existsSync(inWs)) return inWs;
  const inExamples = path.join(ws, rel);
  if (fs.existsSync(inExamples)) return inExamples;
  throw new Error(`example file ${rel} not found under ${ws}`);
}

/** A BERT fixture file of the test workspace (the harness copies test/fixtures/bert/* it needs into `bert/`). */
export function bert(file: string): string {
  const ws = workspaceDir();
  for (const p of [path.join(ws, 'bert', file), path.join(ws, 'test', 'fixtures', 'bert', file)]) if (fs.existsSync(p)) return p;
  throw new Error(`BERT fixture ${file} not found under ${ws}`);
}

export function waitFor<T>(event: vscode.Event<T>, predicate: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const sub = event((v) => {
      if (predicate(v)) {
        clearTimeout(timer);
        sub.dispose();
        resolve(v);
      }
    });
  });
}

// The mocha `tdd` globals the suites use (no @types/mocha in this project).
declare global {
  interface MochaContext {
    skip(): never;
    timeout(ms: number): void;
  }
  function suite(title: string, fn: (this: MochaContext) => void): void;
  function test(title: string, fn: (this: MochaContext) => Promise<void> | void): void;
  function suiteSetup(fn: (this: MochaContext) => Promise<void> | void): void;
  function suiteTeardown(fn: (this: MochaContext) => Promise<void> | void): void;
}
