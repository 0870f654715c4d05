// Owns the engine worker process: started lazily on first use, a clear error (and a fresh worker on the next
// call) when it dies or stops answering (the client's heartbeat watchdog), disposed on deactivate.
import * as vscode from 'vscode';
import path from 'node:path';
import { EngineClient } from '../worker/client';
import type { ProviderChoice } from '../worker/types';

export class EngineHost implements vscode.Disposable {
  private client?: EngineClient;
  private readonly crashEmitter = new vscode.EventEmitter<string>();
  /** Fires with the reason whenever the worker dies unexpectedly. */
  readonly onCrash = this.crashEmitter.event;
  crashCount = 0;
  /** True while a command is running: its own error message then tells the user about the crash. */
  busy: () => boolean = () => false;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get engine(): EngineClient {
    if (!this.client) {
      const env: NodeJS.ProcessEnv = {};
      if (process.env.OTFUSE_TEST_HOOKS === '1' || this.context.extensionMode === vscode.ExtensionMode.Test) env.OTFUSE_TEST_HOOKS = '1';
      this.client = new EngineClient({
        hostScript: path.join(this.context.extensionPath, 'dist', 'host.js'),
        env,
        onLog: (line) => this.log.info(`[worker] ${line}`),
        // Watchdog restarts (stuck worker, cancel that did not stop, memory left high): logged; the call's own
        // error tells the user why it ended.
        onRecycle: (reason) => this.log.warn(`engine worker restarted: ${reason}`),
        onCrash: (reason) => {
          this.crashCount++;
          this.log.error(`engine worker stopped: ${reason}`);
          this.crashEmitter.fire(reason);
          if (this.busy()) return;
          void vscode.window
            .showErrorMessage(`otfuse: the engine worker stopped (${reason}). The next command starts a new one.`, 'Show Log')
            .then((choice) => {
              if (choice) this.log.show();
            });
        },
      });
      this.log.info('engine worker client created (the process starts on first use)');
    }
    return this.client;
  }

  get pid(): number | undefined {
    return this.client?.pid;
  }

  provider(): ProviderChoice {
    return vscode.workspace.getConfiguration('otfuse').get<ProviderChoice>('executionProvider', 'auto');
  }

  async restart(): Promise<void> {
    await this.client?.restart();
    this.log.info('engine worker restarted');
  }

  dispose(): void {
    this.client?.dispose();
    this.client = undefined;
    this.crashEmitter.dispose();
  }
}
