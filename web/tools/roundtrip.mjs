// Open and save diagrams the way the studio does, without a browser: for the round-trip test
// (tests/web/test_roundtrip.py). BPMN goes through bpmn-moddle with the studio's descriptor and
// variable-reference fix (what bpmn-js does on import/export), after the studio's layout step;
// DMN through dmn-moddle (what dmn-js does). Usage: node web/tools/roundtrip.mjs IN OUT [IN OUT ...]
// Prints one JSON line per file: {file, layout_generated, warnings, lost}.
import { BpmnModdle } from 'bpmn-moddle';
import { DmnModdle } from 'dmn-moddle';
import { readFileSync, writeFileSync } from 'node:fs';
import spiffworkflow from '../studio/src/spiff-moddle.js';
import { keepVariableReferences, lostContent, withLayout } from '../studio/src/roundtrip.js';

const args = process.argv.slice(2);
for (let i = 0; i + 1 < args.length; i += 2) {
  const original = readFileSync(args[i], 'utf8');
  const dmn = args[i].endsWith('.dmn');
  const { xml, generated } = dmn ? { xml: original, generated: false } : await withLayout(original);
  const moddle = dmn ? new DmnModdle() : new BpmnModdle({ spiffworkflow });
  const { rootElement, references, warnings } = await moddle.fromXML(xml, dmn ? 'dmn:Definitions' : 'bpmn:Definitions');
  if (!dmn) keepVariableReferences(moddle, references);
  const { xml: saved } = await moddle.toXML(rootElement, { format: true });
  writeFileSync(args[i + 1], saved);
  console.log(
    JSON.stringify({
      file: args[i],
      layout_generated: generated,
      warnings: warnings.map((w) => w.message),
      lost: lostContent(original, saved),
    }),
  );
}
