// The properties panel for govflow's own extensions, so nobody edits XML by hand:
//   user tasks    stage, assignee, action/form, form variable, their deadlines (boundary timers)
//   timers        due()/remind() step and tier (or a custom expression), the step's limits
//   events        the recorded fact (record) and where it escalates (escalate_to)
//   roles         the declared role (engine/workflow/roles.py) and its rating field
//   flows         conditions (also listed on the gateway they leave), scripts, pre/post scripts
// with the sandbox's rules explained beside every piece of code. Every change is a command on
// the modeler's command stack (undo works) and keeps the XML in Spiff's dialect:
// <spiffworkflow:properties><spiffworkflow:property name=".." value=".."/></spiffworkflow:properties>.
import { h } from '@bpmn-io/properties-panel/preact';
import {
  Group,
  NumberFieldEntry,
  SelectEntry,
  TextAreaEntry,
  TextFieldEntry,
  isNumberFieldEntryEdited,
  isSelectEntryEdited,
  isTextAreaEntryEdited,
  isTextFieldEntryEdited,
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

const TIMER_CALL = /^\s*(due|remind)\(\s*["']([\w.-]+)["']\s*(?:,\s*(tier|["'](\w+)["'])\s*)?\)\s*$/;

// ---- reading and writing spiffworkflow properties ------------------------------------------

function extensionValues(bo) {
  return bo.get('extensionElements')?.get('values') || [];
}

function propertiesOf(bo) {
  return extensionValues(bo).find((v) => v.$instanceOf && v.$instanceOf('spiffworkflow:properties'));
}

export function getProperty(element, name) {
  const container = propertiesOf(getBusinessObject(element));
  const found = container?.get('properties').find((p) => p.name === name);
  return found ? found.value : undefined;
}

function ensureExtensionElements(element, bo, services, commands) {
  let ext = bo.get('extensionElements');
  if (!ext) {
    ext = services.bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    ext.$parent = bo;
    commands.push(update(element, bo, { extensionElements: ext }));
  }
  return ext;
}

function update(element, moddleElement, properties) {
  return { cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } };
}

function run(services, commands) {
  if (commands.length) services.commandStack.execute('properties-panel.multi-command-executor', commands);
}

/** Set (or, with an empty value, remove) spiffworkflow properties: {name: value, ...}, one undo step. */
export function setProperties(element, values, services) {
  const bo = getBusinessObject(element);
  const commands = [];
  let container = propertiesOf(bo);
  const wanted = Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!container && wanted.length) {
    const ext = ensureExtensionElements(element, bo, services, commands);
    container = services.moddle.create('spiffworkflow:properties', { properties: [] });
    container.$parent = ext;
    commands.push(update(element, ext, { values: [...ext.get('values'), container] }));
  }
  if (!container) return;
  let list = [...container.get('properties')];
  for (const [name, value] of Object.entries(values)) {
    const existing = list.find((p) => p.name === name);
    if (value === undefined || value === null || value === '') {
      if (existing) list = list.filter((p) => p !== existing);
    } else if (existing) {
      if (existing.value !== value) commands.push(update(element, existing, { value }));
    } else {
      const created = services.moddle.create('spiffworkflow:property', { name, value });
      created.$parent = container;
      list.push(created);
    }
  }
  if (list.length !== container.get('properties').length || list.some((p, i) => p !== container.get('properties')[i])) {
    commands.push(update(element, container, { properties: list }));
  }
  run(services, commands);
}

function textElement(bo, type) {
  return extensionValues(bo).find((v) => v.$instanceOf && v.$instanceOf(type));
}

/** Set or remove a spiffworkflow text element (preScript, postScript). */
function setTextElement(element, type, value, services) {
  const bo = getBusinessObject(element);
  const commands = [];
  const existing = textElement(bo, type);
  if (!value) {
    if (existing) {
      const ext = bo.get('extensionElements');
      commands.push(update(element, ext, { values: ext.get('values').filter((v) => v !== existing) }));
    }
  } else if (existing) {
    commands.push(update(element, existing, { value }));
  } else {
    const ext = ensureExtensionElements(element, bo, services, commands);
    const created = services.moddle.create(type, { value });
    created.$parent = ext;
    commands.push(update(element, ext, { values: [...ext.get('values'), created] }));
  }
  run(services, commands);
}

function setExpression(element, owner, property, value, services) {
  const current = owner.get(property);
  const commands = [];
  if (!value) {
    if (current) commands.push(update(element, owner, { [property]: undefined }));
  } else if (current) {
    commands.push(update(element, current, { body: value }));
  } else {
    const created = services.bpmnFactory.create('bpmn:FormalExpression', { body: value });
    created.$parent = owner;
    commands.push(update(element, owner, { [property]: created }));
  }
  run(services, commands);
}

function useServices() {
  return {
    bpmnFactory: useService('bpmnFactory'),
    commandStack: useService('commandStack'),
    moddle: useService('moddle'),
  };
}

// ---- entries -----------------------------------------------------------------------------

function PropertySelect(props) {
  const { element, id, name, label, options, description } = props;
  const services = useServices();
  const debounce = useService('debounceInput');
  return h(SelectEntry, {
    element,
    id,
    label,
    description,
    debounce,
    getValue: () => getProperty(element, name) ?? '',
    setValue: (value) => setProperties(element, { [name]: value }, services),
    getOptions: () => {
      const current = getProperty(element, name);
      const list = options();
      if (current && !list.some((o) => o.value === current)) list.push({ value: current, label: `${current} (?)` });
      return list;
    },
  });
}

function PropertyText(props) {
  const { element, id, name, label, description } = props;
  const services = useServices();
  const debounce = useService('debounceInput');
  return h(TextFieldEntry, {
    element,
    id,
    label,
    description,
    debounce,
    getValue: () => getProperty(element, name) ?? '',
    setValue: (value) => setProperties(element, { [name]: value?.trim() }, services),
  });
}

function CodeArea(props) {
  const { element, id, label, description, getValue, setValue } = props;
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, { element, id, label, description, debounce, getValue, setValue, monospace: true, rows: 2, autoResize: true });
}

function timerOf(element) {
  const bo = getBusinessObject(element);
  return (bo.get('eventDefinitions') || []).find((d) => is(d, 'bpmn:TimerEventDefinition'));
}

function timerExpression(timer) {
  const kind = ['timeDate', 'timeDuration', 'timeCycle'].find((k) => timer.get(k));
  return { kind: kind || 'timeDate', text: kind ? timer.get(kind).get('body') || '' : '' };
}

export function parseTimer(text) {
  const match = TIMER_CALL.exec(text || '');
  if (!match) return { kind: text ? 'custom' : 'due', step: '', tier: 'tier', text };
  return { kind: match[1], step: match[2], tier: match[3] === 'tier' || !match[3] ? 'tier' : match[4], text };
}

export function timerCall(kind, step, tier) {
  return `${kind}("${step}", ${tier === 'tier' ? 'tier' : `"${tier}"`})`;
}

function setTimer(element, parts, services) {
  const timer = timerOf(element);
  const { kind: slot } = timerExpression(timer);
  const text = parts.kind === 'custom' ? parts.text : timerCall(parts.kind, parts.step, parts.tier);
  setExpression(element, timer, slot, text, services);
  if (parts.kind !== 'custom' && getProperty(element, 'step') !== parts.step && parts.step) {
    setProperties(element, { step: parts.step }, services);
  }
}

function TimerSelect(props) {
  const { element, id, label, part, options } = props;
  const services = useServices();
  return h(SelectEntry, {
    element,
    id,
    label,
    getValue: () => parseTimer(timerExpression(timerOf(element)).text)[part] ?? '',
    setValue: (value) => {
      const current = parseTimer(timerExpression(timerOf(element)).text);
      const next = { ...current, [part]: value };
      if (next.kind !== 'custom' && !next.step) next.step = options.steps()[0] || 'handle';
      if (next.kind === 'custom' && current.kind !== 'custom') next.text = current.text || timerCall('due', current.step || 'handle', current.tier);
      setTimer(element, next, services);
    },
    getOptions: () => options[part](element),
  });
}

function LimitAmount(props) {
  const { element, id, label, tier, step, ctx } = props;
  const eventBus = useService('eventBus');
  const debounce = useService('debounceInput');
  return h(NumberFieldEntry, {
    element,
    id,
    label,
    debounce,
    min: 0,
    step: 'any',
    getValue: () => ctx.deadlines.get(tier, step)?.amount ?? '',
    setValue: (value) => {
      const current = ctx.deadlines.get(tier, step) || { unit: 'working_days' };
      ctx.deadlines.set(tier, step, { ...current, amount: value === undefined || value === '' ? undefined : Number(value) });
      eventBus.fire('elements.changed', { elements: [element] });
    },
    validate: (value) => (value === undefined || value === '' || !(Number(value) > 0) ? ctx.t('err.amount') : null),
  });
}

function LimitUnit(props) {
  const { element, id, label, tier, step, ctx } = props;
  const eventBus = useService('eventBus');
  return h(SelectEntry, {
    element,
    id,
    label,
    getValue: () => ctx.deadlines.get(tier, step)?.unit ?? '',
    setValue: (value) => {
      const current = ctx.deadlines.get(tier, step) || {};
      ctx.deadlines.set(tier, step, { ...current, unit: value });
      eventBus.fire('elements.changed', { elements: [element] });
    },
    getOptions: () => ctx.vocab.deadline_units.map((u) => ({ value: u, label: ctx.t(`unit.${u}`) })),
  });
}

function DeadlineSummary(props) {
  const { element, ctx } = props;
  const selection = useService('selection');
  const timers = (element.attachers || []).filter((a) => timerOf(a));
  const rows = timers.map((timer) => {
    const parsed = parseTimer(timerExpression(timerOf(timer)).text);
    const record = getProperty(timer, 'record');
    const limits = parsed.kind === 'custom' ? parsed.text : ctx.vocab.tiers.map((tier) => {
      const limit = ctx.deadlines.get(tier, parsed.step);
      return `${ctx.t(`tier.${tier}`)} ${limit ? `${limit.amount} ${ctx.t(`unit.${limit.unit}`)}` : '—'}`;
    }).join(' · ');
    return h(
      'li',
      { class: 'gf-deadline-row' },
      h('a', { href: '#', onClick: (e) => (e.preventDefault(), selection.select(timer)) }, timer.businessObject.name || timer.id),
      ` — ${record ? ctx.t(`record.${record}`) : ''} ${parsed.kind === 'custom' ? '' : `${parsed.kind}(${parsed.step})`}: ${limits}`,
    );
  });
  return h(
    'div',
    { class: 'bio-properties-panel-entry gf-deadlines', 'data-entry-id': props.id },
    h('label', { class: 'bio-properties-panel-label' }, ctx.t('prop.deadlines')),
    rows.length ? h('ul', null, rows) : h('div', { class: 'bio-properties-panel-description' }, ctx.t('prop.deadlines.none')),
  );
}

function FlowCondition(props) {
  const { element, id, label, description } = props;
  const services = useServices();
  const flow = props.flow || element;
  return h(CodeArea, {
    element,
    id,
    label,
    description,
    getValue: () => getBusinessObject(flow).get('conditionExpression')?.get('body') || '',
    setValue: (value) => setExpression(flow, getBusinessObject(flow), 'conditionExpression', value, services),
  });
}

function ScriptBody(props) {
  const { element, id, label, description } = props;
  const modeling = useService('modeling');
  return h(CodeArea, {
    element,
    id,
    label,
    description,
    getValue: () => getBusinessObject(element).get('script') || '',
    setValue: (value) => modeling.updateProperties(element, { script: value || undefined }),
  });
}

function TextElementArea(props) {
  const { element, id, label, description, type } = props;
  const services = useServices();
  return h(CodeArea, {
    element,
    id,
    label,
    description,
    getValue: () => textElement(getBusinessObject(element), type)?.get('value') || '',
    setValue: (value) => setTextElement(element, type, value, services),
  });
}

function CustomExpression(props) {
  const { element, id, label, description } = props;
  const services = useServices();
  return h(CodeArea, {
    element,
    id,
    label,
    description,
    getValue: () => timerExpression(timerOf(element)).text,
    setValue: (value) => setTimer(element, { kind: 'custom', text: value || '' }, services),
  });
}

// ---- the provider ------------------------------------------------------------------------

// the construct each of the sandbox's refusals names ("import statements are not allowed …" → import)
const CONSTRUCTS = { import: 'import', while: 'while', function: 'def', class: 'class', lambdas: 'lambda', global: 'global', nonlocal: 'nonlocal' };

function sandboxHelp(ctx) {
  const rules = ctx.vocab.sandbox;
  const refused = [...new Set(rules.refused.map((m) => CONSTRUCTS[m.split(' ')[0]] || m))];
  return ctx.t('sandbox.rules', {
    refused: refused.join(', '),
    max: rules.max_source,
    builtins: rules.builtins.join(', '),
    variables: ctx.vocab.case_variables.join(', '),
  });
}

function group(id, label, entries) {
  return entries.length ? { id, label, entries, component: Group, shouldOpen: true } : null;
}

function localName(element) {
  return getBusinessObject(element).$type.split(':')[1];
}

export default class GovflowPropertiesProvider {
  static $inject = ['propertiesPanel', 'govflowContext'];

  constructor(propertiesPanel, ctx) {
    this.ctx = ctx;
    propertiesPanel.registerProvider(500, this);
  }

  getGroups(element) {
    return (groups) => {
      const ours = [
        this.taskGroup(element),
        this.timerGroup(element),
        this.recordGroup(element),
        this.roleGroup(element),
        this.conditionGroup(element),
        this.gatewayGroup(element),
        this.scriptGroup(element),
      ].filter(Boolean);
      const at = groups.findIndex((g) => g.id === 'general') + 1;
      groups.splice(at, 0, ...ours);
      return groups;
    };
  }

  taskGroup(element) {
    if (!is(element, 'bpmn:UserTask') && !is(element, 'bpmn:ManualTask')) return null;
    const { t, vocab, forms } = this.ctx;
    return group('govflow-task', t('group.task'), [
      {
        id: 'govflow-stage',
        component: PropertySelect,
        name: 'stage',
        label: t('prop.stage'),
        options: () => [{ value: '', label: '' }, ...vocab.stages.map((s) => ({ value: s.value, label: this.ctx.lang === 'en' ? s.value : `${s.zh} (${s.value})` }))],
        isEdited: isSelectEntryEdited,
      },
      {
        id: 'govflow-assignee',
        component: PropertySelect,
        name: 'assignee',
        label: t('prop.assignee'),
        options: () => [{ value: '', label: '' }, ...vocab.assignees.map((a) => ({ value: a, label: `${t(`assignee.${a}`)} (${a})` }))],
        isEdited: isSelectEntryEdited,
      },
      {
        id: 'govflow-action',
        component: PropertySelect,
        name: 'action',
        label: t('prop.action'),
        description: t('prop.action.desc'),
        options: () => [{ value: '', label: '' }, ...Object.keys(forms()).sort().map((f) => ({ value: f, label: f }))],
        isEdited: isSelectEntryEdited,
      },
      {
        id: 'govflow-form-variable',
        component: PropertyText,
        name: 'form_variable',
        label: t('prop.form_variable'),
        isEdited: isTextFieldEntryEdited,
      },
      { id: 'govflow-deadlines', component: DeadlineSummary, ctx: this.ctx },
    ]);
  }

  timerGroup(element) {
    if (!timerOf(element)) return null;
    const { t, vocab } = this.ctx;
    const steps = () => this.ctx.deadlines.steps();
    const parsed = parseTimer(timerExpression(timerOf(element)).text);
    const options = {
      steps,
      kind: () => ['due', 'remind', 'custom'].map((k) => ({ value: k, label: t(`prop.timer.${k}`) })),
      step: () => {
        const list = steps().map((s) => ({ value: s, label: s }));
        if (parsed.step && !steps().includes(parsed.step)) list.push({ value: parsed.step, label: `${parsed.step} (?)` });
        return list;
      },
      tier: () => [{ value: 'tier', label: t('prop.timer.tier.case') }, ...vocab.tiers.map((tier) => ({ value: tier, label: t(`tier.${tier}`) }))],
    };
    const entries = [
      { id: 'govflow-timer-kind', component: TimerSelect, part: 'kind', label: t('prop.timer.kind'), options, isEdited: isSelectEntryEdited },
    ];
    if (parsed.kind === 'custom') {
      entries.push({
        id: 'govflow-timer-expression',
        component: CustomExpression,
        label: t('prop.timer.expression'),
        description: `${t('prop.timer.expression.desc')} ${sandboxHelp(this.ctx)}`,
        isEdited: isTextAreaEntryEdited,
      });
    } else {
      entries.push(
        { id: 'govflow-timer-step', component: TimerSelect, part: 'step', label: t('prop.timer.step'), options, isEdited: isSelectEntryEdited },
        { id: 'govflow-timer-tier', component: TimerSelect, part: 'tier', label: t('prop.timer.tier'), options, isEdited: isSelectEntryEdited },
        { id: 'govflow-timer-limits', component: Caption, text: t('prop.timer.limits', { step: parsed.step }) },
      );
      for (const tier of vocab.tiers) {
        entries.push(
          {
            id: `govflow-limit-${tier}-amount`,
            component: LimitAmount,
            tier,
            step: parsed.step,
            ctx: this.ctx,
            label: `${t(`tier.${tier}`)}`,
            isEdited: isNumberFieldEntryEdited,
          },
          { id: `govflow-limit-${tier}-unit`, component: LimitUnit, tier, step: parsed.step, ctx: this.ctx, label: '', isEdited: isSelectEntryEdited },
        );
      }
    }
    return group('govflow-timer', t('group.timer'), entries);
  }

  recordGroup(element) {
    if (!is(element, 'bpmn:Event')) return null;
    const { t, vocab } = this.ctx;
    return group('govflow-record', t('group.record'), [
      {
        id: 'govflow-record',
        component: PropertySelect,
        name: 'record',
        label: t('prop.record'),
        options: () => [{ value: '', label: t('prop.record.none') }, ...vocab.record_kinds.map((k) => ({ value: k, label: `${t(`record.${k}`)} (${k})` }))],
        isEdited: isSelectEntryEdited,
      },
      {
        id: 'govflow-escalate-to',
        component: PropertyText,
        name: 'escalate_to',
        label: t('prop.escalate_to'),
        description: t('prop.escalate_to.desc'),
        isEdited: isTextFieldEntryEdited,
      },
    ]);
  }

  roleGroup(element) {
    const { t, vocab } = this.ctx;
    const kind = localName(element);
    const allowed = vocab.roles.filter((r) => r.on.includes(kind));
    const current = getProperty(element, 'role');
    if (!allowed.length && !current) return null;
    const entries = [
      {
        id: 'govflow-role',
        component: PropertySelect,
        name: 'role',
        label: t('prop.role'),
        description: current ? t(`roles.${current}`) : allowed.map((r) => t(`roles.${r.role}`)).join(' '),
        options: () => [{ value: '', label: t('prop.role.none') }, ...allowed.map((r) => ({ value: r.role, label: r.role }))],
        isEdited: isSelectEntryEdited,
      },
    ];
    if (current === 'evaluation') {
      const action = getProperty(element, 'action');
      entries.push({
        id: 'govflow-rating-field',
        component: PropertySelect,
        name: 'rating_field',
        label: t('prop.rating_field'),
        options: () => [{ value: '', label: '' }, ...Object.keys(this.ctx.forms()[action]?.fields || this.ctx.forms()[action] || {}).map((f) => ({ value: f, label: f }))],
        isEdited: isSelectEntryEdited,
      });
    }
    return group('govflow-role', t('group.role'), entries);
  }

  conditionGroup(element) {
    if (!is(element, 'bpmn:SequenceFlow')) return null;
    const source = element.source && getBusinessObject(element.source);
    if (!source || !(is(source, 'bpmn:ExclusiveGateway') || is(source, 'bpmn:InclusiveGateway') || is(source, 'bpmn:Activity'))) return null;
    const { t } = this.ctx;
    return group('govflow-condition', t('group.condition'), [
      {
        id: 'govflow-condition',
        component: FlowCondition,
        label: t('prop.condition'),
        description: `${t('prop.condition.desc')} ${sandboxHelp(this.ctx)}`,
        isEdited: isTextAreaEntryEdited,
      },
    ]);
  }

  gatewayGroup(element) {
    if (!is(element, 'bpmn:ExclusiveGateway') && !is(element, 'bpmn:InclusiveGateway')) return null;
    const { t } = this.ctx;
    const bo = getBusinessObject(element);
    // in the order SpiffWorkflow tries them: by target position, top to bottom
    const flows = (element.outgoing || []).filter((f) => is(f, 'bpmn:SequenceFlow')).sort((a, b) => (a.target?.y ?? 0) - (b.target?.y ?? 0));
    if (!flows.length) return null;
    return group(
      'govflow-gateway',
      t('group.gateway'),
      [{ id: 'govflow-gw-order', component: Caption, text: t('prop.gateway.order') }, ...flows.map((flow) => ({
        id: `govflow-gw-condition-${flow.id}`,
        component: FlowCondition,
        flow,
        label: `${t('prop.flow', { target: flow.target?.businessObject.name || flow.target?.id })}${flow.businessObject.name ? ` · ${flow.businessObject.name}` : ''}`,
        description: bo.default === flow.businessObject ? t('prop.gateway.default') : '',
        isEdited: isTextAreaEntryEdited,
      }))],
    );
  }

  scriptGroup(element) {
    const { t } = this.ctx;
    const help = sandboxHelp(this.ctx);
    const entries = [];
    if (is(element, 'bpmn:ScriptTask')) {
      entries.push({ id: 'govflow-script', component: ScriptBody, label: t('prop.script'), description: help, isEdited: isTextAreaEntryEdited });
    }
    if (is(element, 'bpmn:Activity')) {
      entries.push(
        { id: 'govflow-prescript', component: TextElementArea, type: 'spiffworkflow:preScript', label: t('prop.prescript'), description: entries.length ? '' : help, isEdited: isTextAreaEntryEdited },
        { id: 'govflow-postscript', component: TextElementArea, type: 'spiffworkflow:postScript', label: t('prop.postscript'), isEdited: isTextAreaEntryEdited },
      );
    }
    return group('govflow-script', t('group.script'), entries);
  }
}

function Caption(props) {
  return h('div', { class: 'bio-properties-panel-entry gf-caption', 'data-entry-id': props.id }, props.text);
}

/** The diagram-js module: the provider and the studio's context (vocabulary, forms, deadlines, words). */
export function govflowPropertiesModule(ctx) {
  return {
    __init__: ['govflowPropertiesProvider'],
    govflowContext: ['value', ctx],
    govflowPropertiesProvider: ['type', GovflowPropertiesProvider],
  };
}
