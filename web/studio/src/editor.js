// The BPMN editor: bpmn-js's Modeler with the properties panel (its BPMN groups plus govflow's),
// Spiff's extension namespace declared, diagrams without a layout laid out on open, validation
// issues drawn on the elements they name, and a check that nothing of the opened XML is lost.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import { translateModule } from '../../common/i18n.js';
import { diagramDictionary } from './diagram-i18n.js';
import { govflowPropertiesModule } from './properties.js';
import { keepVariableReferences, lostContent, reorderedGateways, withLayout } from './roundtrip.js';
import spiffworkflow from './spiff-moddle.js';

/** The modules every diagram view of the studio shares (moddle, variable references, words). */
export function diagramOptions(lang) {
  return {
    moddleExtensions: { spiffworkflow },
    additionalModules: [translateModule(diagramDictionary(lang)), variableReferencesModule],
  };
}

/** Keeps Spiff's variable names in loopDataInputRef/loopDataOutputRef (see roundtrip.js). */
const variableReferencesModule = {
  __init__: ['govflowVariableReferences'],
  govflowVariableReferences: [
    'type',
    class {
      static $inject = ['eventBus', 'moddle'];
      constructor(eventBus, moddle) {
        eventBus.on('import.parse.complete', ({ references }) => keepVariableReferences(moddle, references));
      }
    },
  ],
};

export class BpmnEditor {
  constructor({ canvas, panel, lang, context, onChange }) {
    const options = diagramOptions(lang);
    this.modeler = new BpmnModeler({
      container: canvas,
      propertiesPanel: { parent: panel },
      debounceInput: false,
      moddleExtensions: options.moddleExtensions,
      additionalModules: [
        ...options.additionalModules,
        BpmnPropertiesPanelModule,
        BpmnPropertiesProviderModule,
        govflowPropertiesModule(context),
      ],
    });
    this.marked = [];
    this.importing = false;
    // a sub-process opened for the first time is shown whole
    const seen = new Set();
    this.modeler.on('import.done', () => seen.clear());
    this.modeler.on('root.set', ({ element }) => {
      if (this.importing || seen.has(element.id)) return;
      seen.add(element.id);
      this.modeler.get('canvas').zoom('fit-viewport', 'auto');
    });
    this.modeler.on('commandStack.changed', () => {
      if (!this.importing) onChange?.();
    });
  }

  get(service) {
    return this.modeler.get(service);
  }

  /**
   * Open `xml` (laid out first when it has no layout). Returns {warnings, layoutGenerated,
   * checked}: `checked` resolves, once the diagram is shown, to {lost, reordered} — what saving
   * this diagram unchanged would drop (then it must not be saved) and the gateways whose
   * conditions a generated layout puts in another order. Throws when the XML is not BPMN.
   */
  async open(xml) {
    this.importing = true;
    try {
      const { xml: laidOut, generated } = await withLayout(xml);
      performance.mark('gf-laid-out');
      const { warnings } = await this.modeler.importXML(laidOut);
      this.modeler.get('canvas').zoom('fit-viewport', 'auto');
      performance.mark('gf-imported');
      const checked = new Promise((resolve) => setTimeout(resolve, 0)).then(async () => {
        const { xml: saved } = await this.modeler.saveXML({ format: true });
        const registry = this.modeler.get('elementRegistry');
        const positions = (id) => registry.get(id)?.y;
        return {
          lost: lostContent(xml, saved),
          reordered: generated ? reorderedGateways(this.modeler.getDefinitions(), positions) : [],
        };
      });
      this.checked = checked;
      return { warnings, layoutGenerated: generated, checked };
    } finally {
      this.importing = false;
    }
  }

  /** True when the diagram was edited since it was opened. */
  dirty() {
    return this.modeler.get('commandStack').canUndo();
  }

  async xml() {
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  /** Check that `xml` parses as BPMN with at least one process (for files brought in by hand). */
  async check(xml) {
    const moddle = this.modeler.get('moddle');
    const { rootElement } = await moddle.fromXML(xml, 'bpmn:Definitions');
    if (!(rootElement.get('rootElements') || []).some((e) => e.$instanceOf('bpmn:Process') || e.$instanceOf('bpmn:Collaboration'))) {
      throw new Error('no bpmn:process in the file');
    }
  }

  /** Draw the validation issues that name an element of this diagram; returns the ids drawn. */
  showIssues(issues) {
    const canvas = this.modeler.get('canvas');
    const overlays = this.modeler.get('overlays');
    const registry = this.modeler.get('elementRegistry');
    for (const id of this.marked) {
      canvas.removeMarker(id, 'gf-issue');
      canvas.removeMarker(id, 'gf-issue-inside');
    }
    overlays.remove({ type: 'gf-issue' });
    this.marked = [];
    const byElement = new Map();
    for (const issue of issues) {
      if (!issue.element || !registry.get(issue.element)) continue;
      byElement.set(issue.element, [...(byElement.get(issue.element) || []), issue]);
    }
    for (const [id, found] of byElement) {
      const element = registry.get(id);
      canvas.addMarker(element, 'gf-issue');
      this.marked.push(id);
      const badge = document.createElement('div');
      badge.className = 'gf-issue-badge';
      badge.dataset.element = id;
      badge.textContent = '!';
      badge.title = found.map((i) => i.text).join('\n');
      const position = element.waypoints ? { top: -10, left: -10 } : { top: -12, right: 12 };
      overlays.add(element, 'gf-issue', { position, html: badge });
      // an element inside a collapsed sub-process: mark the sub-process where it is drawn
      for (let parent = element.parent; parent; parent = parent.parent) {
        const shape = registry.get(parent.id.replace(/_plane$/, ''));
        if (parent.id.endsWith('_plane') && shape) {
          canvas.addMarker(shape, 'gf-issue-inside');
          this.marked.push(shape.id);
        }
      }
    }
    return [...byElement.keys()];
  }

  /** Show and select an element (switching to the sub-process plane that holds it). */
  jumpTo(id) {
    const registry = this.modeler.get('elementRegistry');
    const element = registry.get(id);
    if (!element) return false;
    const canvas = this.modeler.get('canvas');
    const root = canvas.findRoot(element);
    if (root && root !== canvas.getRootElement()) canvas.setRootElement(root);
    this.modeler.get('selection').select(element);
    canvas.scrollToElement(element, { top: 120, bottom: 120, left: 200, right: 200 });
    return true;
  }

  destroy() {
    this.modeler.destroy();
  }
}
