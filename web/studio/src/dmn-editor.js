// The decision-table editor: dmn-js's Modeler (DRD, decision tables, literal expressions), in the
// page's language. dmn-js builds one viewer per view and takes their modules per view, so the
// translation goes to each (a `common` module list is replaced by the per-view one).
import DmnModeler from 'dmn-js/lib/Modeler';
import { translateModule } from '../../common/i18n.js';
import { diagramDictionary } from './diagram-i18n.js';

const DMN12 = 'http://www.omg.org/spec/DMN/20180521/MODEL/';

export class DmnEditor {
  constructor({ canvas, lang, onChange }) {
    const translate = translateModule(diagramDictionary(lang));
    const view = { additionalModules: [translate] };
    this.modeler = new DmnModeler({
      container: canvas,
      drd: view,
      decisionTable: view,
      literalExpression: view,
      boxedExpression: view,
    });
    this.container = canvas;
    this.onChange = onChange;
    this.importing = false;
    this.modeler.on('views.changed', () => this.listen());
  }

  listen() {
    const viewer = this.modeler.getActiveViewer();
    if (!viewer || viewer === this.listening) return;
    this.listening = viewer;
    viewer.get('eventBus').on('commandStack.changed', () => {
      if (!this.importing) this.onChange?.();
    });
  }

  /** Open a DMN 1.3 file, showing its first decision table; throws on anything else. */
  async open(xml) {
    if (xml.includes(DMN12)) throw new Error('DMN 1.2: only DMN 1.3 files can be opened (dmn-js 17)');
    this.importing = true;
    try {
      const { warnings } = await this.modeler.importXML(xml);
      const table = this.modeler.getViews().find((v) => v.type === 'decisionTable');
      if (table) await this.modeler.open(table);
      this.listen();
      this.opened = await this.xml();
      return { warnings };
    } finally {
      this.importing = false;
    }
  }

  /** Mark the table cells, rules and decisions the validation issues name (by element id). */
  showIssues(issues) {
    const root = this.container;
    for (const cell of root.querySelectorAll('.gf-issue-cell')) cell.classList.remove('gf-issue-cell');
    for (const issue of issues) {
      if (!issue.element) continue;
      for (const cell of root.querySelectorAll(`[data-element-id="${CSS.escape(issue.element)}"]`)) {
        cell.classList.add('gf-issue-cell');
        cell.title = issue.text;
      }
    }
  }

  jumpTo(id) {
    const root = this.container;
    const cell = root.querySelector(`[data-element-id="${CSS.escape(id)}"]`);
    cell?.scrollIntoView({ block: 'center' });
    return Boolean(cell);
  }

  async xml() {
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  async dirty() {
    return (await this.xml()) !== this.opened;
  }

  destroy() {
    this.modeler.destroy();
  }
}
