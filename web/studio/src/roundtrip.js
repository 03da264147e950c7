// Keeping diagrams whole across open → save: the layout of a diagram that has none, the
// variable names Spiff keeps in reference fields, and a check that the modeler keeps
// everything the opened XML holds.

export const SPIFF_URI = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
const DI_URIS = new Set([
  'http://www.omg.org/spec/BPMN/20100524/DI',
  'http://www.omg.org/spec/DD/20100524/DC',
  'http://www.omg.org/spec/DD/20100524/DI',
]);

// the BPMN elements drawn as shapes: a diagram whose interchange misses one of them (an element
// added by hand to a laid-out file) is laid out again rather than shown without it
const DRAWN = new Set(
  'task userTask manualTask scriptTask serviceTask businessRuleTask sendTask receiveTask callActivity subProcess transaction startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent exclusiveGateway parallelGateway inclusiveGateway eventBasedGateway complexGateway'.split(' '),
);

/** True when the XML carries diagram interchange (shapes and positions) for every element drawn. */
export function hasLayout(xml) {
  if (!/<([\w.-]+:)?BPMNDiagram[\s>]/.test(xml)) return false;
  const shaped = new Set([...xml.matchAll(/\sbpmnElement="([^"]+)"/g)].map((m) => m[1]));
  for (const match of xml.matchAll(/<(?:[\w.-]+:)?(\w+)\s[^>]*?\bid="([^"]+)"/g)) {
    if (DRAWN.has(match[1]) && !shaped.has(match[2])) return false;
  }
  return true;
}

/**
 * The XML with a layout: unchanged when it has one, else with the diagram interchange that
 * bpmn-auto-layout computes for it (govflow's packs may hold diagrams written by hand, without
 * positions). Only the layout is taken from bpmn-auto-layout: its own parse would drop what
 * bpmn-moddle cannot resolve (see keepVariableReferences), so the layout is spliced into the
 * original text.
 */
const laidOut = new Map(); // the last few layouts, by XML (opening, comparing and the case view share them)
const STORED = 'govflow.layouts'; // … and across visits, in the browser's localStorage
const KEEP = 6;

/** A short fingerprint of a text (FNV-1a, 32 bits, with its length): the layout cache's key. */
export function fingerprint(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return `${(hash >>> 0).toString(16)}-${text.length}`;
}

function stored() {
  try {
    return typeof localStorage === 'undefined' ? null : JSON.parse(localStorage.getItem(STORED) || '[]');
  } catch {
    return null;
  }
}

function store(key, xml) {
  const list = stored();
  if (!list) return;
  const kept = [[key, xml], ...list.filter(([k]) => k !== key)].slice(0, KEEP);
  try {
    localStorage.setItem(STORED, JSON.stringify(kept));
  } catch {
    localStorage.removeItem(STORED); // full: start again
  }
}

export async function withLayout(xml) {
  if (hasLayout(xml)) return { xml, generated: false };
  if (!laidOut.has(xml)) {
    const key = fingerprint(xml);
    const known = stored()?.find(([k]) => k === key);
    const result = known ? Promise.resolve({ xml: known[1], generated: true }) : layout(xml);
    if (!known) result.then((r) => store(key, r.xml));
    laidOut.set(xml, result);
    if (laidOut.size > 8) laidOut.delete(laidOut.keys().next().value);
  }
  return laidOut.get(xml);
}

async function layout(original) {
  // a stale layout (elements without shapes) is dropped and made again
  const xml = original.replace(/<([\w.-]+:)?BPMNDiagram\b[\s\S]*?<\/([\w.-]+:)?BPMNDiagram>\s*/g, '');
  const { layoutProcess } = await import('bpmn-auto-layout');
  const laid = spreadBoundaryEvents(dropDuplicateShapes(await layoutProcess(xml)));
  const diagrams = laid.match(/<bpmndi:BPMNDiagram[\s\S]*<\/bpmndi:BPMNDiagram>/);
  const root = xml.match(/<([\w.-]+:)?definitions\b[^>]*>/);
  const close = xml.lastIndexOf('</');
  if (!diagrams || !root || close < 0) return { xml: laid, generated: true };
  const declared = namespaces(xml);
  const wanted = namespaces(laid.match(/<([\w.-]+:)?definitions\b[^>]*>/)[0]);
  let start = root[0];
  for (const prefix of ['bpmndi', 'dc', 'di']) {
    if (declared[prefix] === undefined) start = start.replace(/\s*(\/?)>$/, ` xmlns:${prefix}="${wanted[prefix]}"$1>`);
    else if (declared[prefix] !== wanted[prefix]) return { xml: laid, generated: true };
  }
  const merged = xml.slice(0, root.index) + start + xml.slice(root.index + root[0].length, close) + diagrams[0] + '\n' + xml.slice(close);
  return { xml: merged, generated: true };
}

/**
 * bpmn-auto-layout may draw an element twice (e.g. an end event after a boundary event, or the
 * flows leaving a task reached from another task's boundary event): keep its last shape or edge.
 */
export function dropDuplicateShapes(laid) {
  const shapes = [...laid.matchAll(/<bpmndi:(BPMNShape|BPMNEdge)\b[^>]*\bid="([^"]+)"[\s\S]*?<\/bpmndi:\1>\s*/g)];
  const last = new Map(shapes.map((m) => [m[2], m.index]));
  let out = laid;
  for (const match of shapes.reverse()) {
    if (last.get(match[2]) !== match.index) out = out.slice(0, match.index) + out.slice(match.index + match[0].length);
  }
  return out;
}

/**
 * bpmn-auto-layout puts every boundary event of a task on the same spot: spread them along the
 * task's lower edge (their labels move with them), so each can be seen and selected.
 */
export function spreadBoundaryEvents(laid) {
  const attached = new Map();
  for (const match of laid.matchAll(/<bpmn:boundaryEvent\b[^>]*>/g)) {
    const id = /\sid="([^"]+)"/.exec(match[0])?.[1];
    const host = /\sattachedToRef="([^"]+)"/.exec(match[0])?.[1];
    if (id && host) attached.set(host, [...(attached.get(host) || []), id]);
  }
  const bounds = (id) => new RegExp(`(<bpmndi:BPMNShape\\b[^>]*bpmnElement="${id}"[^>]*>\\s*<dc:Bounds x=")([-\\d.]+)("[^>]*>)`);
  let out = laid;
  for (const [host, events] of attached) {
    if (events.length < 2) continue;
    const hostShape = new RegExp(`<bpmndi:BPMNShape\\b[^>]*bpmnElement="${host}"[^>]*>\\s*<dc:Bounds x="([-\\d.]+)" y="[-\\d.]+" width="([\\d.]+)"`).exec(out);
    if (!hostShape) continue;
    const centre = Number(hostShape[1]) + Number(hostShape[2]) / 2;
    events.forEach((id, i) => {
      const shape = bounds(id).exec(out);
      if (!shape) return;
      const to = Math.round(centre + (i - (events.length - 1) / 2) * 42 - 18);
      const dx = to - Number(shape[2]);
      out = out.replace(bounds(id), `$1${to}$3`);
      // flows leaving the event start where it now is (the first, vertical segment moves along)
      for (const flow of out.matchAll(new RegExp(`<bpmn:sequenceFlow\\b[^>]*sourceRef="${id}"[^>]*>`, 'g'))) {
        const flowId = /\sid="([^"]+)"/.exec(flow[0])?.[1];
        const edge = new RegExp(`(<bpmndi:BPMNEdge\\b[^>]*bpmnElement="${flowId}"[^>]*>\\s*<di:waypoint x=")([-\\d.]+)(" y="[-\\d.]+"\\s*/>\\s*<di:waypoint x=")([-\\d.]+)(")`);
        const found = edge.exec(out);
        if (!found) continue;
        const second = found[4] === found[2] ? Number(found[4]) + dx : Number(found[4]);
        out = out.replace(edge, `$1${Number(found[2]) + dx}$3${second}$5`);
      }
      // the event's label (BPMNLabel bounds inside the same shape)
      const label = new RegExp(`(<bpmndi:BPMNShape\\b[^>]*bpmnElement="${id}"[\\s\\S]*?<bpmndi:BPMNLabel>\\s*<dc:Bounds x=")([-\\d.]+)(")`);
      const found = label.exec(out);
      if (found && found[0].indexOf('</bpmndi:BPMNShape>') < 0) out = out.replace(label, `$1${Number(found[2]) + dx}$3`);
    });
  }
  return out;
}

/**
 * Spiff names a *variable* in a multi-instance loop's loopDataInputRef/loopDataOutputRef
 * ("called", "reports"), where BPMN expects the id of a data input: bpmn-moddle cannot resolve
 * it and would drop it. Give each such name a detached stand-in with that id, so it is written
 * back unchanged. `references` and `moddle` come from the parse (fromXML or bpmn-js's
 * import.parse.complete event).
 */
export function keepVariableReferences(moddle, references) {
  for (const { element, property, id } of references || []) {
    if (property !== 'bpmn:loopDataInputRef' && property !== 'bpmn:loopDataOutputRef') continue;
    const name = property.slice(5);
    if (element.get(name)) continue;
    element.set(name, moddle.create(name === 'loopDataInputRef' ? 'bpmn:DataInput' : 'bpmn:DataOutput', { id }));
  }
}

// BPMN attributes whose default value bpmn-moddle leaves out when writing
const DEFAULTS = {
  gatewayDirection: 'Unspecified',
  instantiate: 'false',
  eventGatewayType: 'Exclusive',
  mustUnderstand: 'false',
  textFormat: 'text/plain',
  isInterrupting: 'true',
  parallelMultiple: 'false',
  cancelActivity: 'true',
  waitForCompletion: 'true',
  isCollection: 'false',
  isUnlimited: 'true',
  isForCompensation: 'false',
  startQuantity: '1',
  completionQuantity: '1',
  triggeredByEvent: 'false',
  isSequential: 'false',
  behavior: 'All',
  testBefore: 'false',
  cancelRemainingInstances: 'true',
  expressionLanguage: 'http://www.w3.org/1999/XPath',
  typeLanguage: 'http://www.w3.org/2001/XMLSchema',
};

function namespaces(xml) {
  const found = { '': '' };
  for (const match of xml.matchAll(/xmlns(?::([\w.-]+))?\s*=\s*["']([^"']*)["']/g)) {
    found[match[1] || ''] = match[2];
  }
  return found;
}

/**
 * What the XML holds, as counts: elements by namespace and local name, attributes by name, and
 * the text bodies of elements (scripts, conditions, timer expressions). Diagram interchange
 * (positions) and comments are left out: a layout may change, comments are not kept.
 */
export function inventory(xml) {
  const body = xml.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '');
  const ns = namespaces(body);
  const counts = {};
  const add = (key) => (counts[key] = (counts[key] || 0) + 1);
  const tag = /<([\w.-]+:)?([\w.-]+)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>([^<]*)/g;
  for (const match of body.matchAll(tag)) {
    const uri = ns[(match[1] || '').slice(0, -1)] ?? match[1];
    if (DI_URIS.has(uri)) continue;
    const name = `${uri === SPIFF_URI ? 'spiffworkflow' : uri.split('/').slice(-2, -1)[0] || uri}:${match[2]}`;
    add(name);
    for (const attr of match[3].matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      const [qname, value] = [attr[1], attr[2] ?? attr[3]];
      if (qname === 'xmlns' || qname.startsWith('xmlns:')) continue;
      if (qname.includes(':') && DI_URIS.has(ns[qname.split(':')[0]])) continue;
      const local = qname.split(':').pop();
      if (DEFAULTS[local] === value) continue; // bpmn-moddle does not write default values
      add(`${name}@${local}=${value}`);
    }
    const text = match[5].trim();
    if (text && !match[4]) add(`${name} = ${text}`);
  }
  return counts;
}

/** What `after` holds less of than `before` (what a save would lose), as readable lines. */
export function lostContent(before, after) {
  const had = inventory(before);
  const has = inventory(after);
  return Object.keys(had)
    .filter((key) => (has[key] || 0) < had[key])
    .map((key) => `${key} (${had[key]} → ${has[key] || 0})`);
}

/**
 * SpiffWorkflow tries a gateway's conditions in the order of their targets' positions, top to
 * bottom (its parser sorts outgoing flows by y); without a layout, in the order the flows are
 * written. The gateways (ids) where `positionOf` (element id → y) puts two conditional flows
 * in another order than the XML's — after a generated layout, what the officer must check.
 */
export function reorderedGateways(definitions, positionOf) {
  const changed = [];
  const visit = (container) => {
    const flows = (container.flowElements || []).filter((e) => e.$instanceOf('bpmn:SequenceFlow'));
    for (const node of container.flowElements || []) {
      if (node.$instanceOf('bpmn:FlowElementsContainer')) visit(node);
      if (!node.$instanceOf('bpmn:Gateway')) continue;
      const conditional = flows.filter((f) => f.sourceRef === node && f.conditionExpression && f !== node.default);
      if (conditional.length < 2) continue;
      const sorted = [...conditional].sort((a, b) => (positionOf(a.targetRef?.id) ?? 0) - (positionOf(b.targetRef?.id) ?? 0));
      if (sorted.some((f, i) => f !== conditional[i])) changed.push(node.id);
    }
  };
  for (const root of definitions.rootElements || []) if (root.$instanceOf('bpmn:Process')) visit(root);
  return changed;
}
