// Widget models created by the kernel (gpt4all_magic/sidebar.py). Both are model-only: they place
// or act on other things, and have no view of their own.

import {
  DOMWidgetView,
  ISerializers,
  WidgetModel,
  unpack_models
} from '@jupyter-widgets/base';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';

// package.json is bundled by the builder: one version for the npm package and the Python wheel.
declare const require: (path: string) => any;
const pkg = require('../package.json');

export const MODULE_NAME: string = pkg.name;
export const MODULE_VERSION: string = pkg.version;

export const chatIcon = new LabIcon({
  name: 'gpt4all-magic:chat',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" ' +
    'fill="#616161" d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 ' +
    '2-2zm3 6.5a1.5 1.5 0 1 0 0-.01zm5 0a1.5 1.5 0 1 0 0-.01zm5 0a1.5 1.5 0 1 0 0-.01z"/></svg>'
});

/**
 * What the models need from the application; filled in when the plugin activates.
 */
export const env: {
  shell: JupyterFrontEnd.IShell | null;
  restored: Promise<void>;
  tracker: INotebookTracker | null;
  panels: Map<string, Panel>; // kernel id -> the sidebar panel showing that kernel's chat
} = {
  shell: null,
  restored: Promise.resolve(),
  tracker: null,
  panels: new Map()
};

function kernelIdOf(model: WidgetModel): string {
  const manager = model.widget_manager as any;
  return manager?.kernel?.id ?? '';
}

/**
 * Shows its `child` widget in the left or right sidebar, in a panel we own.
 *
 * The panel goes away when this model or the child is closed, and when the kernel restarts
 * (comm_live turns false): a restart does not close models, it only disconnects them.
 */
export class SidebarModel extends WidgetModel {
  static serializers: ISerializers = {
    ...WidgetModel.serializers,
    child: { deserialize: unpack_models }
  };

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'SidebarModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      child: null,
      title: 'GPT4All chat',
      area: 'right',
      rank: 900
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.once('destroy', () => {
      this._gone = true;
      this._dispose();
    });
    this.on('comm_live_update', () => {
      if (!this.comm_live) {
        this._gone = true;
        this._dispose();
      }
    });
    // A model restored from a notebook's saved widget state has no kernel behind it: show nothing.
    if (this.comm_live) {
      void this._place();
    }
  }

  private async _place(): Promise<void> {
    // The layout restorer may still be arranging the shell (e.g. during "Run All" after a reload).
    await env.restored;
    const child = this.get('child') as WidgetModel | null;
    if (this._gone || !child || !env.shell) {
      return;
    }
    const view = (await this.widget_manager.create_view(child, {})) as DOMWidgetView;
    if (this._gone) {
      view.remove();
      return;
    }
    // The view's own Lumino widget handed to the shell ends up 0 px tall (the ipywidgets layout
    // clears sizes Lumino sets), so it goes into a panel we own and size with CSS.
    const panel = new Panel();
    panel.id = `gpt4all-chat-${this.model_id}`;
    panel.addClass('gpt4all-sidebar');
    panel.title.icon = chatIcon;
    const path = (this.widget_manager as any)?.context?.path;
    panel.title.caption = path ? `${this.get('title')} — ${path}` : this.get('title');
    panel.addWidget(view.luminoWidget);
    this._panel = panel;
    const kernelId = kernelIdOf(this);
    this.listenTo(child, 'destroy', () => this._dispose());
    panel.disposed.connect(() => {
      view.remove();
      if (env.panels.get(kernelId) === panel) {
        env.panels.delete(kernelId);
      }
    });
    env.panels.get(kernelId)?.dispose(); // one panel per kernel
    env.panels.set(kernelId, panel);
    const area = this.get('area') === 'left' ? 'left' : 'right';
    env.shell.add(panel, area, { rank: this.get('rank') });
    env.shell.activateById(panel.id);
  }

  private _dispose(): void {
    if (this._panel && !this._panel.isDisposed) {
      this._panel.dispose();
    }
    this._panel = null;
  }

  private _panel: Panel | null = null;
  private _gone = false;
}

/**
 * Inserts code cells into the notebook of this model's kernel when the kernel asks.
 */
export class CellInserterModel extends WidgetModel {
  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'CellInserterModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      ready: false
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.on('msg:custom', (content: any) => this._onMessage(content));
    if (this.comm_live && env.tracker && !this.get('ready')) {
      this.set('ready', true);
      this.save_changes();
    }
  }

  private _onMessage(content: any): void {
    if (!content || content.method !== 'insert_cell' || typeof content.code !== 'string') {
      return;
    }
    const panel = notebookOfKernel(kernelIdOf(this));
    if (!panel) {
      this.send({ event: 'error', message: 'no open notebook uses this kernel' });
      return;
    }
    const notebook = panel.content;
    NotebookActions.insertBelow(notebook);
    notebook.activeCell?.model.sharedModel.setSource(content.code);
    env.shell?.activateById(panel.id);
    this.send({ event: 'inserted', path: panel.context.path });
  }
}

/**
 * The notebook whose kernel has this id: the current one if it matches, else the first found.
 */
export function notebookOfKernel(kernelId: string): NotebookPanel | null {
  const tracker = env.tracker;
  if (!tracker || !kernelId) {
    return null;
  }
  const current = tracker.currentWidget;
  if (current && current.sessionContext.session?.kernel?.id === kernelId) {
    return current;
  }
  return tracker.find(p => p.sessionContext.session?.kernel?.id === kernelId) ?? null;
}
