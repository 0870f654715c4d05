// The otfuse webviews share one bundle; document.body.dataset.view says which view this document is.
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDivider, vsCodeProgressRing, vsCodeTag, vsCodeBadge } from '@vscode/webview-ui-toolkit';
import type { ViewKind } from '../contracts/protocol';
import { startAlignment } from './alignment/view';
import { startModel } from './model';
import { startCompare } from './compare';
import { startLarge } from './large';
import { startRecipe } from './recipe';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDivider(), vsCodeProgressRing(), vsCodeTag(), vsCodeBadge());

const starts: Record<ViewKind, () => void> = { alignment: startAlignment, model: startModel, compare: startCompare, large: startLarge, recipe: startRecipe };
starts[document.body.dataset.view as ViewKind]?.();
