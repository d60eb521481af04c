// Document sources under a chat answer (gpt4all_magic/conversation/render.py `sources_html`) are links
// with the file's path relative to the kernel's folder; a click opens the file in JupyterLab, at the line
// for text files. The path is resolved against the folder of the notebook whose kernel wrote the chat.

import { JupyterFrontEnd } from '@jupyterlab/application';
import { showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';

import { env, notebookOfKernel } from './models';

/** The folder (relative to JupyterLab's root) of the notebook whose chat holds `link`. */
function baseFolder(link: HTMLElement): string {
  const tracker = env.tracker;
  let notebook = tracker?.find(panel => panel.node.contains(link)) ?? null; // a chat shown inline
  const sidebar = link.closest('.gpt4all-sidebar');
  if (!notebook && sidebar) {
    for (const [kernelId, panel] of env.panels) {
      if (panel.node === sidebar) {
        notebook = notebookOfKernel(kernelId);
      }
    }
  }
  notebook = notebook ?? tracker?.currentWidget ?? null;
  return notebook ? PathExt.dirname(notebook.context.path) : '';
}

export async function openSource(app: JupyterFrontEnd, link: HTMLElement): Promise<void> {
  const relative = link.dataset.path ?? '';
  const path = PathExt.normalize(PathExt.join(baseFolder(link), relative));
  if (!relative || path.startsWith('..')) {
    await showErrorMessage('Open source', `${relative} is outside the folder JupyterLab serves.`);
    return;
  }
  const widget = (await app.commands.execute('docmanager:open', { path })) as any;
  const line = Number(link.dataset.line ?? 0);
  const editor = widget?.content?.editor;
  if (line > 0 && editor) {
    await widget.context?.ready;
    const position = { line: line - 1, column: 0 };
    editor.setCursorPosition(position);
    editor.revealPosition?.(position);
  }
}

/** Document-level click (and Enter) handler: only our source links react. */
export function sourceClicks(app: JupyterFrontEnd): (event: Event) => void {
  return (event: Event) => {
    if (event instanceof KeyboardEvent && event.key !== 'Enter') {
      return;
    }
    const target = event.target;
    const link =
      target instanceof HTMLElement
        ? (target.closest('.gpt4all-chat .gpt4all-source[data-path]') as HTMLElement | null)
        : null;
    if (!link) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    void openSource(app, link).catch(reason =>
      showErrorMessage('Open source', `Could not open ${link.dataset.path}: ${reason}`)
    );
  };
}
