// The case view: the diagram of the version a case runs on, its completed path and open tasks
// highlighted, its timeline beside it (GET /api/v1/cases/{id}, …/events, …/diagram).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { api } from '../../common/api.js';
import { formatTime, h, mount } from '../../common/dom.js';
import { diagramOptions } from './editor.js';
import { withLayout } from './roundtrip.js';

function eventSummary(event, t, lang) {
  const d = event.data || {};
  const parts = [];
  if (d.task) parts.push(d.task);
  if (d.element) parts.push(d.element);
  if (d.stage) parts.push(`→ ${d.stage}`);
  if (d.owner) parts.push(d.owner);
  if (d.matter) parts.push(d.matter);
  if (d.unit) parts.push(d.unit);
  if (d.escalate_to) parts.push(`⇧ ${d.escalate_to}`);
  if (d.due_at) parts.push(t('case.due', { at: formatTime(d.due_at, lang) }));
  return parts.join(' · ');
}

// how smart dispatch routed the report (the case view's routing) and its duplicate links
function routingFacts(info, t) {
  const r = info.routing || {};
  const out = [];
  const candidates = r.candidates || [];
  if (r.how || candidates.length) {
    out.push(
      h('dt', null, t('case.routing')),
      h(
        'dd',
        { class: 'gf-case-routing' },
        r.how ? h('div', { class: 'gf-sub' }, r.how) : null,
        h('ol', { class: 'gf-candidates' }, candidates.map((c) => h('li', { dataset: { matter: c.matter || '' } }, `${c.name ? `${c.name} ` : ''}${c.matter} · ${Math.round((c.p || 0) * 100)}%`))),
        (r.evidence || []).length ? h('div', { class: 'gf-evidence' }, `${t('case.evidence')}: ${r.evidence.join('、')}`) : null,
      ),
    );
  }
  if (info.linked_to) {
    out.push(h('dt', null, t('case.linkedTo')), h('dd', { class: 'gf-case-linked', dataset: { main: info.linked_to } }, `${info.linked_to}${info.linked_to_status ? ` (${info.linked_to_status})` : ''}`));
  }
  if ((info.duplicates || []).length) {
    out.push(h('dt', null, t('case.duplicates')), h('dd', null, h('ul', { class: 'gf-case-duplicates' }, info.duplicates.map((id) => h('li', { dataset: { case: id } }, id)))));
  }
  return out;
}

function eventName(kind, t) {
  for (const key of [`event.${kind}`, `record.${kind}`]) if (t(key) !== key) return t(key);
  return kind;
}

export async function renderCase(container, { caseId, t, lang }) {
  const [info, events, diagram] = await Promise.all([
    api(`/api/v1/cases/${encodeURIComponent(caseId)}`),
    api(`/api/v1/cases/${encodeURIComponent(caseId)}/events`),
    api(`/api/v1/cases/${encodeURIComponent(caseId)}/diagram`),
  ]);
  const canvas = h('div', { class: 'gf-case-canvas' });
  const tabs = h('div', { class: 'gf-case-tabs' });
  const timeline = h(
    'ol',
    { class: 'gf-timeline' },
    events.map((e) =>
      h(
        'li',
        { dataset: { kind: e.kind, element: e.data?.task || e.data?.element || '' } },
        h('time', null, formatTime(e.at, lang)),
        h('strong', null, `${eventName(e.kind, t)} (${e.kind})`),
        h('span', { class: 'gf-actor' }, [e.actor, e.actor_unit].filter(Boolean).join(' / ')),
        h('div', { class: 'gf-sub' }, eventSummary(e, t, lang)),
      ),
    ),
  );
  const facts = h(
    'dl',
    { class: 'gf-case-facts' },
    h('dt', null, t('case.status')),
    h('dd', { class: 'gf-case-status' }, `${info.status_name} (${info.status})`),
    h('dt', null, t('case.owner')),
    h('dd', null, info.owner_unit || '—'),
    h('dt', null, t('case.matter')),
    h('dd', null, info.category || '—'),
    h('dt', null, t('case.version')),
    h('dd', null, `${info.pack.name} ${info.pack.version}`),
    h('dt', null, t('case.deadline')),
    h('dd', { class: 'gf-case-deadline' }, info.next_deadline ? formatTime(info.next_deadline, lang) : '—'),
    h('dt', null, t('case.open')),
    h(
      'dd',
      null,
      h('ul', { class: 'gf-open-tasks' }, info.open_tasks.map((task) => h('li', { dataset: { task: task.name, due: task.due_at || '' } }, `${task.title} · ${task.unit || task.assignee || ''}${task.due_at ? ` · ${t('case.due', { at: formatTime(task.due_at, lang) })}` : ''}`))),
    ),
    ...routingFacts(info, t),
  );
  mount(
    container,
    h('h2', null, `${t('case.title')} · ${info.id}`),
    h(
      'div',
      { class: 'gf-case' },
      h('div', { class: 'gf-case-main' }, tabs, h('p', { class: 'gf-legend' }, t('case.legend')), canvas),
      h('aside', { class: 'gf-case-side' }, facts, h('h3', null, t('case.timeline')), timeline),
    ),
  );
  const options = diagramOptions(lang);
  const viewer = new NavigatedViewer({ container: canvas, ...options });
  const show = async (file) => {
    for (const button of tabs.children) button.classList.toggle('active', button.dataset.path === file.path);
    const { xml } = await withLayout(file.xml);
    await viewer.importXML(xml);
    const registry = viewer.get('elementRegistry');
    const canvasService = viewer.get('canvas');
    const { completed, open, waiting } = diagram.elements;
    const markAll = (ids, cls) => {
      for (const id of ids) {
        const element = registry.get(id);
        if (!element) continue;
        canvasService.addMarker(element, cls);
        for (let parent = element.parent; parent; parent = parent.parent) {
          const shape = parent.id.endsWith('_plane') && registry.get(parent.id.replace(/_plane$/, ''));
          if (shape) canvasService.addMarker(shape, cls === 'gf-case-open' ? 'gf-case-open' : 'gf-case-active');
        }
      }
    };
    markAll(completed, 'gf-case-done');
    markAll(waiting, 'gf-case-waiting');
    markAll(open, 'gf-case-open');
    // a sequence flow was taken when both its ends ran (or its target is where the case waits)
    const reached = new Set([...completed, ...open, ...waiting]);
    for (const element of registry.filter((e) => e.waypoints && e.source && e.target)) {
      if (completed.includes(element.source.id) && reached.has(element.target.id)) canvasService.addMarker(element, 'gf-case-done');
    }
    const first = open.map((id) => registry.get(id)).find(Boolean);
    const root = first && canvasService.findRoot(first);
    if (root && root !== canvasService.getRootElement()) canvasService.setRootElement(root);
    canvasService.zoom('fit-viewport', 'auto');
  };
  for (const file of diagram.diagrams) {
    tabs.append(h('button', { type: 'button', dataset: { path: file.path }, onclick: () => show(file) }, file.path));
  }
  if (diagram.diagrams.length) await show(diagram.diagrams[0]);
  timeline.addEventListener('click', (event) => {
    const id = event.target.closest('li')?.dataset.element;
    const element = id && viewer.get('elementRegistry').get(id);
    if (!element) return;
    const canvasService = viewer.get('canvas');
    const root = canvasService.findRoot(element);
    if (root && root !== canvasService.getRootElement()) canvasService.setRootElement(root);
    canvasService.scrollToElement(element);
  });
  return { info, events, diagram, viewer };
}
