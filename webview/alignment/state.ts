// The Alignment view's state (what the host sent, what the user selected), kept across reloads via setState.
import type { LiveState, MapPayload, RunView } from '../../contracts/protocol';
import { vscodeApi } from '../rpc';

export interface Persisted {
  runDir?: string;
  selected?: string;
  dismissed?: number[];
  /** Detail map options: rows sorted by match, log colour scale, the top-k table open. */
  sortByMatch?: boolean;
  logScale?: boolean;
  topOpen?: boolean;
}

export const S = {
  run: null as RunView | null,
  live: null as LiveState | null,
  busyRuns: [] as string[],
  thumbs: new Map<string, MapPayload>(),
  detail: null as MapPayload | null,
  persisted: ((vscodeApi.getState() as Persisted | undefined) ?? {}) as Persisted,
};

export function save(): void {
  vscodeApi.setState(S.persisted);
}

export const app = () => document.getElementById('app')!;
export const width = () => Math.max(160, app().clientWidth);
