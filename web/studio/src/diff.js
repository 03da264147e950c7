// The visual diff between two versions of a pack: each diagram that differs shown old beside new
// with added (green), removed (red), changed (orange) and moved-only (blue) elements coloured
// (bpmn-js-differ finds them), a table of every changed property — govflow's extension
// properties, conditions, scripts and timers included, which bpmn-js-differ only flags without
// detail — and the changed deadlines, responsibility entries and other files.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { diff as bpmnDiff } from 'bpmn-js-differ';
import { h, mount } from '../../common/dom.js';
import { diagramOptions } from './editor.js';
import { normalEntry } from './draft.js';
import { withLayout } from './roundtrip.js';

/** The properties of a diagram element that matter to govflow, as strings by name. */
export function elementProperties(bo) {
  const out = {};
  const set = (key, value) => {
    if (value !== undefined && value !== null && value !== '') out[key] = String(value);
  };
  set('name', bo.name);
  set('type', bo.$type.replace('bpmn:', ''));
  set('sourceRef', bo.sourceRef?.id);
  set('targetRef', bo.targetRef?.id);
  set('attachedToRef', bo.attachedToRef?.id);
  if (bo.$instanceOf('bpmn:BoundaryEvent')) set('cancelActivity', bo.cancelActivity);
  set('default', bo.default?.id);
  set('condition', bo.conditionExpression?.body);
  set('script', bo.script);
  set('calledElement', bo.calledElement);
  for (const definition of bo.eventDefinitions || []) {
    for (const slot of ['timeDate', 'timeDuration', 'timeCycle']) set(slot, definition[slot]?.body);
    set('signal', definition.signalRef?.name || definition.signalRef?.id);
    set('message', definition.messageRef?.name || definition.messageRef?.id);
  }
  const loop = bo.loopCharacteristics;
  if (loop) {
    set('loop.input', loop.loopDataInputRef?.id);
    set('loop.output', loop.loopDataOutputRef?.id);
    set('loop.item', loop.inputDataItem?.name);
    set('loop.completion', loop.completionCondition?.body);
    set('loop.sequential', loop.isSequential);
  }
  for (const doc of bo.documentation || []) set('documentation', doc.text);
  for (const value of bo.extensionElements?.values || []) {
    if (value.$instanceOf?.('spiffworkflow:properties')) {
      for (const p of value.properties || []) set(p.name, p.value);
    } else if (value.$type?.startsWith('spiffworkflow:')) {
      set(value.$type.slice('spiffworkflow:'.length), value.value ?? value.$body);
    }
  }
  return out;
}

function flowElements(definitions) {
  const found = new Map();
  const walk = (container) => {
    for (const element of container.flowElements || []) {
      found.set(element.id, element);
      walk(element);
    }
    for (const element of container.artifacts || []) found.set(element.id, element);
  };
  for (const root of definitions.rootElements || []) {
    if (root.$instanceOf('bpmn:Process')) walk(root);
  }
  return found;
}

/** Property rows [{id, name, property, old, new}] for elements present in both. */
export function propertyChanges(before, after) {
  const a = flowElements(before);
  const b = flowElements(after);
  const rows = [];
  for (const [id, element] of b) {
    if (!a.has(id)) continue;
    const old = elementProperties(a.get(id));
    const now = elementProperties(element);
    for (const key of new Set([...Object.keys(old), ...Object.keys(now)])) {
      if (old[key] !== now[key]) rows.push({ id, name: element.name || a.get(id).name || '', property: key, old: old[key], new: now[key] });
    }
  }
  return rows;
}

async function viewerFor(container, xml, lang) {
  const options = diagramOptions(lang);
  const viewer = new NavigatedViewer({ container, ...options });
  const { xml: laidOut } = await withLayout(xml);
  await viewer.importXML(laidOut);
  viewer.get('canvas').zoom('fit-viewport', 'auto');
  return viewer;
}

function mark(viewer, ids, cls) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  for (const id of ids) {
    const element = registry.get(id);
    if (!element) continue;
    canvas.addMarker(element, cls);
    for (let parent = element.parent; parent; parent = parent.parent) {
      const shape = parent.id.endsWith('_plane') && registry.get(parent.id.replace(/_plane$/, ''));
      if (shape) canvas.addMarker(shape, 'gf-diff-inside');
    }
  }
}

function focus(viewer, id) {
  const element = viewer.get('elementRegistry').get(id);
  if (!element) return;
  const canvas = viewer.get('canvas');
  const root = canvas.findRoot(element);
  if (root && root !== canvas.getRootElement()) canvas.setRootElement(root);
  canvas.scrollToElement(element, { top: 100, bottom: 100, left: 150, right: 150 });
}

/** Leaf values of nested settings, by dotted path. */
function flatten(value, prefix = '', out = {}) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const isLimit = keys.length && keys.every((k) => k === 'amount' || k === 'unit');
    if (!isLimit) {
      for (const key of keys) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
      return out;
    }
  }
  out[prefix] = value;
  return out;
}

function showValue(value, t) {
  if (value === undefined) return '—';
  if (value && typeof value === 'object' && 'amount' in value) return `${value.amount} ${t(`unit.${value.unit}`)}`;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function entryText(entry, cat, t) {
  if (!entry) return '—';
  const limit = entry.time_limit ? `；${showValue(entry.time_limit, t)}` : '';
  return `${cat.unitName(entry.main)}${entry.cooperating?.length ? ` + ${entry.cooperating.map(cat.unitName).join('、')}` : ''}${limit}`;
}

/**
 * Render the diff of versions `a` → `b` (describe() documents) into `container`.
 * `read(version, path)` fetches a file of a version, `data(version, path)` a YAML file of it parsed;
 * `cat` is the catalog index (unit names).
 * Returns counts, for the page's status and tests.
 */
export async function renderDiff(container, { a, b, read, data, cat, t, lang }) {
  const filesA = new Map(a.files.map((f) => [f.path, f]));
  const filesB = new Map(b.files.map((f) => [f.path, f]));
  const paths = [...new Set([...filesA.keys(), ...filesB.keys()])].sort();
  const differs = (path) => filesA.get(path)?.sha256 !== filesB.get(path)?.sha256;
  const sections = [];
  const counts = { elements: 0, properties: 0, settings: 0, responsibility: 0, files: 0 };

  // diagrams
  for (const path of paths.filter((p) => p.endsWith('.bpmn') && differs(p))) {
    const [xmlA, xmlB] = await Promise.all([
      filesA.has(path) ? read(a.version, path) : null,
      filesB.has(path) ? read(b.version, path) : null,
    ]);
    const left = h('div', { class: 'gf-diff-canvas', dataset: { side: 'old' } });
    const right = h('div', { class: 'gf-diff-canvas', dataset: { side: 'new' } });
    const table = h('tbody');
    const section = h(
      'section',
      { class: 'gf-diff-diagram', dataset: { path } },
      h('h3', null, path),
      h('p', { class: 'gf-legend' }, t('diff.legend')),
      h('div', { class: 'gf-diff-pair' }, h('div', null, h('h4', null, `${t('diff.from')} ${a.version}`), left), h('div', null, h('h4', null, `${t('diff.to')} ${b.version}`), right)),
      h(
        'table',
        { class: 'gf-table gf-diff-table' },
        h('thead', null, h('tr', null, [t('diff.element'), t('diff.property'), t('diff.old'), t('diff.new')].map((c) => h('th', null, c)))),
        table,
      ),
    );
    mount(container, ...sections, section);
    sections.push(section);
    if (!xmlA || !xmlB) {
      table.append(h('tr', null, h('td', { colspan: 4 }, xmlA ? t('diff.removed') : t('diff.added'))));
      continue;
    }
    performance.mark('gf-diff-xml');
    const [va, vb] = await Promise.all([viewerFor(left, xmlA, lang), viewerFor(right, xmlB, lang)]);
    performance.mark('gf-diff-viewers');
    const defsA = va.getDefinitions();
    const defsB = vb.getDefinitions();
    const result = bpmnDiff(defsA, defsB);
    const added = Object.keys(result._added);
    const removed = Object.keys(result._removed);
    const layout = Object.keys(result._layoutChanged);
    const rows = propertyChanges(defsA, defsB);
    const changed = [...new Set([...Object.keys(result._changed), ...rows.map((r) => r.id)])].filter((id) => !added.includes(id) && !removed.includes(id));
    mark(va, removed, 'gf-diff-removed');
    mark(va, changed, 'gf-diff-changed');
    mark(vb, added, 'gf-diff-added');
    mark(vb, changed, 'gf-diff-changed');
    mark(vb, layout.filter((id) => !changed.includes(id)), 'gf-diff-layout');
    counts.elements += added.length + removed.length + changed.length;
    counts.properties += rows.length;
    const label = (id, defs) => {
      const element = flowElements(defs).get(id);
      return `${element?.name || ''} (${id})`;
    };
    const row = (id, cls, property, old, now) => {
      const tr = h(
        'tr',
        { class: `gf-diff-row ${cls}`, dataset: { element: id, property } },
        h('td', null, h('a', { href: '#', onclick: (e) => (e.preventDefault(), focus(va, id), focus(vb, id)) }, label(id, cls === 'gf-diff-removed' ? defsA : defsB))),
        h('td', null, property),
        h('td', { class: 'gf-old' }, old ?? ''),
        h('td', { class: 'gf-new' }, now ?? ''),
      );
      table.append(tr);
    };
    for (const id of added) row(id, 'gf-diff-added', t('diff.added'), '', flowElements(defsB).get(id)?.$type?.replace('bpmn:', ''));
    for (const id of removed) row(id, 'gf-diff-removed', t('diff.removed'), flowElements(defsA).get(id)?.$type?.replace('bpmn:', ''), '');
    for (const r of rows) row(r.id, 'gf-diff-changed', r.property, r.old, r.new);
    for (const id of changed.filter((c) => !rows.some((r) => r.id === c))) row(id, 'gf-diff-changed', t('diff.changed'), '', '');
    for (const id of layout.filter((l) => !changed.includes(l) && !added.includes(l))) row(id, 'gf-diff-layout', t('diff.layout'), '', '');
    if (!table.children.length) table.append(h('tr', null, h('td', { colspan: 4 }, t('diff.nochanges'))));
  }

  // settings (deadlines first)
  const flatA = flatten(a.settings || {});
  const flatB = flatten(b.settings || {});
  const settingRows = [...new Set([...Object.keys(flatA), ...Object.keys(flatB)])]
    .filter((key) => JSON.stringify(flatA[key]) !== JSON.stringify(flatB[key]))
    .sort((x, y) => Number(!x.startsWith('deadlines.')) - Number(!y.startsWith('deadlines.')) || x.localeCompare(y));
  counts.settings = settingRows.length;
  const settings = h(
    'section',
    { class: 'gf-diff-settings' },
    h('h3', null, t('diff.settings')),
    settingRows.length
      ? h(
          'table',
          { class: 'gf-table' },
          h('thead', null, h('tr', null, [t('diff.property'), t('diff.old'), t('diff.new')].map((c) => h('th', null, c)))),
          h('tbody', null, settingRows.map((key) => h('tr', { class: 'gf-diff-row gf-diff-changed', dataset: { setting: key } }, h('td', null, key), h('td', { class: 'gf-old' }, showValue(flatA[key], t)), h('td', { class: 'gf-new' }, showValue(flatB[key], t))))),
        )
      : h('p', null, t('diff.nochanges')),
  );

  // the responsibility list
  const responsibility = h('section', { class: 'gf-diff-responsibility' }, h('h3', null, t('diff.responsibility')));
  const RESP = 'policies/responsibility.yaml';
  if (differs(RESP)) {
    const [ya, yb] = await Promise.all([filesA.has(RESP) ? data(a.version, RESP) : null, filesB.has(RESP) ? data(b.version, RESP) : null]);
    const entries = (list) => new Map((list?.entries || []).map((e) => [String(e.matter), normalEntry(e)]));
    const ea = entries(ya);
    const eb = entries(yb);
    const rows = [];
    for (const matter of new Set([...ea.keys(), ...eb.keys()])) {
      const old = ea.get(matter);
      const now = eb.get(matter);
      if (JSON.stringify(old) === JSON.stringify(now)) continue;
      const cls = !old ? 'gf-diff-added' : !now ? 'gf-diff-removed' : 'gf-diff-changed';
      rows.push(h('tr', { class: `gf-diff-row ${cls}`, dataset: { matter } }, h('td', null, `${cat.matterName(matter) || ''} ${matter}`), h('td', { class: 'gf-old' }, entryText(old, cat, t)), h('td', { class: 'gf-new' }, entryText(now, cat, t))));
    }
    counts.responsibility = rows.length;
    responsibility.append(
      rows.length
        ? h('table', { class: 'gf-table' }, h('thead', null, h('tr', null, [t('resp.matter'), t('diff.old'), t('diff.new')].map((c) => h('th', null, c)))), h('tbody', null, rows))
        : h('p', null, t('diff.nochanges')),
    );
  } else {
    responsibility.append(h('p', null, t('diff.nochanges')));
  }

  // every other file
  const others = paths.filter((p) => p !== 'pack.yaml' && !p.endsWith('.bpmn') && differs(p));
  counts.files = others.length;
  const files = h(
    'section',
    { class: 'gf-diff-files' },
    h('h3', null, t('diff.files')),
    others.length
      ? h('ul', null, others.map((p) => h('li', { dataset: { path: p } }, `${p} — ${!filesA.has(p) ? t('diff.added') : !filesB.has(p) ? t('diff.removed') : t('diff.changed')}`)))
      : h('p', null, t('diff.nochanges')),
  );
  const nothing = !others.length && !settingRows.length ? h('p', { class: 'gf-same' }, t('diff.same')) : null;
  mount(container, nothing, ...sections, settings, responsibility, files);
  return counts;
}
