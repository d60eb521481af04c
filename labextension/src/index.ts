// The gpt4all-magic JupyterLab extension: registers the kernel-side models (sidebar placement and
// cell insertion), the "Open GPT4All chat" command, Enter-to-send in the chat's input box, and opening
// the document sources cited under an answer.
// The chat panel itself is a Python widget made of standard ipywidgets controls.

import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import {
  CellInserterModel,
  MODULE_NAME,
  MODULE_VERSION,
  SidebarModel,
  chatIcon,
  env
} from './models';
import { sourceClicks } from './sources';

const COMMAND = 'gpt4all-magic:open-chat';

/** What the command runs in the notebook's kernel (what a user would type). */
export const OPEN_CODE = '%load_ext gpt4all_magic\n%gpt4all chat --sidebar\n';

/** Appended to the input box's text on Enter; the kernel treats it as "send" (gpt4all_magic/chat_panel.py). */
const SEND_MARK = '\ue000';

function enterSends(event: KeyboardEvent): void {
  if (
    event.key !== 'Enter' ||
    event.shiftKey ||
    event.altKey ||
    event.ctrlKey ||
    event.metaKey ||
    event.isComposing
  ) {
    return;
  }
  const target = event.target;
  if (!(target instanceof HTMLTextAreaElement) || !target.closest('.gpt4all-chat-input')) {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
  // Going through the textarea's own "input" event keeps the text and the "send" in one ordered
  // state update; a separate button click could overtake the last keystrokes.
  target.value = target.value + SEND_MARK;
  target.dispatchEvent(new Event('input', { bubbles: true }));
}

async function openChat(app: JupyterFrontEnd, tracker: INotebookTracker): Promise<void> {
  let panel: NotebookPanel | null = tracker.currentWidget;
  if (!panel) {
    const kernelName = app.serviceManager.kernelspecs.specs?.default;
    panel = (await app.commands.execute('notebook:create-new', {
      kernelName
    })) as NotebookPanel;
  }
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    await showErrorMessage(
      'Open GPT4All chat',
      'This notebook has no kernel; start one (Kernel menu), then run the command again.'
    );
    return;
  }
  const existing = env.panels.get(kernel.id);
  if (existing && !existing.isDisposed) {
    app.shell.activateById(existing.id);
    return;
  }
  const future = kernel.requestExecute({
    code: OPEN_CODE,
    silent: false,
    store_history: false,
    allow_stdin: false
  });
  const reply = await future.done;
  const content = reply.content as any;
  if (content.status !== 'ok') {
    const what = content.ename ? `${content.ename}: ${content.evalue}` : content.status;
    await showErrorMessage(
      'Open GPT4All chat',
      `The kernel could not open the chat (${what}). Install gpt4all-magic in the notebook's ` +
        'environment, or run `%load_ext gpt4all_magic` and `%gpt4all chat` in a cell.'
    );
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'gpt4all-magic:plugin',
  description: 'Places the kernel-side GPT4All chat panel in the sidebar.',
  autoStart: true,
  requires: [IJupyterWidgetRegistry],
  optional: [INotebookTracker, ICommandPalette, ILauncher],
  activate: (
    app: JupyterFrontEnd,
    registry: IJupyterWidgetRegistry,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null
  ) => {
    env.shell = app.shell;
    env.restored = app.restored;
    env.tracker = tracker;
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { SidebarModel, CellInserterModel }
    });
    document.addEventListener('keydown', enterSends, true);
    const onSource = sourceClicks(app);
    document.addEventListener('click', onSource, true);
    document.addEventListener('keydown', onSource, true);

    if (!tracker) {
      return;
    }
    app.commands.addCommand(COMMAND, {
      label: 'Open GPT4All chat',
      caption: "Chat with a local model in the notebook's kernel (opens in the right sidebar)",
      icon: args => (args['isPalette'] ? undefined : chatIcon),
      execute: () => openChat(app, tracker)
    });
    palette?.addItem({ command: COMMAND, category: 'GPT4All' });
    launcher?.add({ command: COMMAND, category: 'Other', rank: 50 });
  }
};

export default plugin;
