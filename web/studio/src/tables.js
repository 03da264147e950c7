// Rule tables edited as tables: the responsibility list (matter → main and cooperating units,
// time limit) and the deadline settings (tier × step). Units and matters are picked from the
// pack's catalog; every cell is checked as it is typed (the types the engine expects), and the
// server's validation of the whole draft marks the rows it names.
import { h, mount, select } from '../../common/dom.js';

/** Units, matters and group patterns of a parsed catalog.yaml. */
export function catalogIndex(catalog) {
  const units = (catalog?.units || []).map((u) => ({ code: String(u.code), name: String(u.name || u.code), kind: String(u.kind || '') }));
  const matters = (catalog?.matters || []).map((m) => ({ code: String(m.code), name: String(m.name || m.code), tier: m.tier }));
  const groups = [...new Set(matters.map((m) => m.code.split('.')[0]))].sort();
  return {
    units,
    departments: units.filter((u) => u.kind === 'department'),
    matters,
    groups,
    unitName: (code) => units.find((u) => u.code === code)?.name || code,
    matterName: (code) => (code.endsWith('.*') ? null : matters.find((m) => m.code === code)?.name),
    knownMatter: (code) => (code.endsWith('.*') ? groups.includes(code.slice(0, -2)) : matters.some((m) => m.code === code)),
  };
}

function positive(value) {
  return value !== '' && value !== null && value !== undefined && Number(value) > 0;
}

/** What is wrong with one entry, by field (empty when nothing). */
export function entryErrors(entry, index, entries, cat, vocab, t) {
  const errors = {};
  if (!entry.matter) errors.matter = t('err.required');
  else if (!cat.knownMatter(entry.matter)) errors.matter = t('err.matter', { value: entry.matter });
  else if (entries.findIndex((e) => e.matter === entry.matter) !== index) errors.matter = t('err.duplicate');
  const isDepartment = (code) => cat.departments.some((u) => u.code === code);
  if (!entry.main) errors.main = t('err.required');
  else if (!isDepartment(entry.main)) errors.main = t('err.unitcode', { value: entry.main });
  const bad = (entry.cooperating || []).filter((c) => !isDepartment(c));
  if (bad.length) errors.cooperating = t('err.unitcode', { value: bad.join(', ') });
  if (entry.time_limit) {
    if (!positive(entry.time_limit.amount)) errors.time_limit = t('err.amount');
    else if (!vocab.time_limit_units.includes(entry.time_limit.unit)) errors.time_limit = t('err.unit');
  }
  return errors;
}

export function renderResponsibility(container, { draft, cat, vocab, t, readOnly, issues, onChange }) {
  const serverIssues = new Map();
  for (const issue of issues || []) {
    if (issue.file === 'policies/responsibility.yaml' && issue.element) {
      serverIssues.set(issue.element, [...(serverIssues.get(issue.element) || []), issue.text]);
    }
  }
  const baseByMatter = new Map(draft.baseEntries.map((e) => [e.matter, JSON.stringify(e)]));
  const filter = h('input', { class: 'gf-filter', type: 'search', placeholder: t('resp.filter') });
  const body = h('tbody');
  const matterOptions = (current) => {
    const options = [['', '']];
    for (const group of cat.groups) {
      options.push([`${group}.*`, `${group}.* ${t('resp.pattern', { group })}`]);
      for (const m of cat.matters.filter((x) => x.code.startsWith(`${group}.`))) options.push([m.code, `${m.code} ${m.name}`]);
    }
    if (current && !options.some(([v]) => v === current)) options.push([current, `${current} (?)`]);
    return options;
  };
  const departmentOptions = (current) => {
    const options = [['', ''], ...cat.departments.map((u) => [u.code, `${u.name} (${u.code})`])];
    if (current && !options.some(([v]) => v === current)) options.push([current, `${current} (?)`]);
    return options;
  };

  const rowOf = (entry, index) => {
    const tr = h('tr', { dataset: { matter: entry.matter } });
    const cells = {};
    const refresh = () => {
      const errors = entryErrors(entry, draft.entries.indexOf(entry), draft.entries, cat, vocab, t);
      for (const [field, td] of Object.entries(cells)) {
        td.classList.toggle('gf-invalid', Boolean(errors[field]));
        td.querySelector('.gf-cell-error').textContent = errors[field] || '';
      }
      const state = !baseByMatter.has(entry.matter) ? 'new' : baseByMatter.get(entry.matter) === JSON.stringify(entry) ? '' : 'changed';
      tr.className = [state && `gf-row-${state}`, serverIssues.has(entry.matter) && 'gf-row-issue'].filter(Boolean).join(' ');
      tr.title = (serverIssues.get(entry.matter) || []).join('\n');
      tr.dataset.matter = entry.matter;
      return errors;
    };
    const changed = () => {
      refresh();
      onChange();
    };
    const disabled = readOnly;
    const matter = select(matterOptions(entry.matter), entry.matter, { class: 'gf-matter', disabled });
    matter.addEventListener('change', () => {
      entry.matter = matter.value;
      changed();
    });
    const main = select(departmentOptions(entry.main), entry.main, { class: 'gf-main', disabled });
    main.addEventListener('change', () => {
      entry.main = main.value;
      changed();
    });
    const chips = h('span', { class: 'gf-chips' });
    const drawChips = () =>
      mount(
        chips,
        (entry.cooperating || []).map((code) =>
          h(
            'span',
            { class: 'gf-chip', title: code },
            cat.unitName(code),
            disabled
              ? null
              : h('button', {
                  type: 'button',
                  class: 'gf-chip-x',
                  'aria-label': t('resp.remove'),
                  onclick: () => {
                    entry.cooperating = entry.cooperating.filter((c) => c !== code);
                    drawChips();
                    changed();
                  },
                }, '×'),
          ),
        ),
      );
    drawChips();
    const add = select([['', '+'], ...cat.departments.map((u) => [u.code, u.name])], '', { class: 'gf-add-coop', disabled });
    add.addEventListener('change', () => {
      if (add.value && !(entry.cooperating || []).includes(add.value)) {
        entry.cooperating = [...(entry.cooperating || []), add.value];
        drawChips();
        changed();
      }
      add.value = '';
    });
    const amount = h('input', { type: 'number', min: '0', step: 'any', class: 'gf-amount', value: entry.time_limit?.amount ?? '', disabled });
    const unit = select([['', ''], ...vocab.time_limit_units.map((u) => [u, t(`unit.${u}`)])], entry.time_limit?.unit, { class: 'gf-unit', disabled });
    const limitChanged = () => {
      entry.time_limit = amount.value === '' && !unit.value ? undefined : { amount: amount.value === '' ? '' : Number(amount.value), unit: unit.value };
      if (!entry.time_limit) delete entry.time_limit;
      changed();
    };
    amount.addEventListener('input', limitChanged);
    unit.addEventListener('change', limitChanged);
    const cell = (field, ...content) => (cells[field] = h('td', { class: `gf-col-${field}` }, ...content, h('div', { class: 'gf-cell-error' })));
    tr.append(
      cell('matter', matter, h('div', { class: 'gf-sub' }, cat.matterName(entry.matter) || '')),
      cell('main', main),
      cell('cooperating', chips, disabled ? null : add),
      cell('time_limit', amount, unit),
      h(
        'td',
        null,
        disabled
          ? null
          : h('button', {
              type: 'button',
              class: 'gf-remove',
              onclick: () => {
                draft.entries.splice(draft.entries.indexOf(entry), 1);
                draw();
                onChange();
              },
            }, t('resp.remove')),
      ),
    );
    refresh();
    return tr;
  };

  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    mount(
      body,
      draft.entries
        .map((entry, index) => [entry, index])
        .filter(([e]) => !q || e.matter.toLowerCase().includes(q) || (cat.matterName(e.matter) || '').toLowerCase().includes(q))
        .map(([entry, index]) => rowOf(entry, index)),
    );
  };
  filter.addEventListener('input', draw);
  const addButton = readOnly
    ? null
    : h('button', {
        type: 'button',
        class: 'gf-add-entry',
        onclick: () => {
          draft.entries.unshift({ matter: '', main: '', cooperating: [], time_limit: { amount: 1, unit: 'working_days' } });
          filter.value = '';
          draw();
          onChange();
        },
      }, t('resp.add'));
  draw();
  mount(
    container,
    h('div', { class: 'gf-table-head' }, h('h2', null, t('resp.title')), filter, addButton),
    h(
      'div',
      { class: 'gf-table-scroll' },
      h(
        'table',
        { class: 'gf-table gf-responsibility' },
        h('thead', null, h('tr', null, [t('resp.matter'), t('resp.main'), t('resp.cooperating'), t('resp.limit'), ''].map((c) => h('th', null, c)))),
        body,
      ),
    ),
  );
  return {
    focus(matter) {
      filter.value = '';
      draw();
      const row = body.querySelector(`tr[data-matter="${CSS.escape(matter)}"]`);
      row?.scrollIntoView({ block: 'center' });
      row?.classList.add('gf-row-focus');
    },
  };
}

export function renderDeadlines(container, { draft, vocab, t, readOnly, issues, onChange }) {
  const tiers = vocab.tiers;
  const flagged = new Map();
  for (const issue of issues || []) {
    const match = /settings\.deadlines\.(\w+)\.(\w+)/.exec(issue.message || '');
    if (issue.file === 'pack.yaml' && match) flagged.set(`${match[1]}.${match[2]}`, issue.text);
  }
  const body = h('tbody');
  const cellOf = (tier, step) => {
    const limit = draft.deadline(tier, step) || {};
    const base = draft.baseDeadlines[tier]?.[step];
    const td = h('td', { dataset: { tier, step } });
    const amount = h('input', { type: 'number', min: '0', step: 'any', class: 'gf-amount', value: limit.amount ?? '', disabled: readOnly });
    const unit = select([['', ''], ...vocab.deadline_units.map((u) => [u, t(`unit.${u}`)])], limit.unit, { class: 'gf-unit', disabled: readOnly });
    const error = h('div', { class: 'gf-cell-error' });
    const refresh = () => {
      const current = draft.deadline(tier, step);
      let message = '';
      if (current && !positive(current.amount)) message = t('err.amount');
      else if (current && !vocab.deadline_units.includes(current.unit)) message = t('err.unit');
      error.textContent = message || flagged.get(`${tier}.${step}`) || '';
      td.classList.toggle('gf-invalid', Boolean(message || flagged.has(`${tier}.${step}`)));
      td.classList.toggle('gf-cell-changed', JSON.stringify(current) !== JSON.stringify(base));
    };
    const changed = () => {
      draft.setDeadline(tier, step, { amount: amount.value === '' ? '' : Number(amount.value), unit: unit.value });
      refresh();
      onChange();
    };
    amount.addEventListener('input', changed);
    unit.addEventListener('change', changed);
    td.append(amount, unit, error);
    refresh();
    return td;
  };
  const draw = () =>
    mount(
      body,
      draft.steps().map((step) => h('tr', { dataset: { step } }, h('th', { scope: 'row' }, step), tiers.map((tier) => cellOf(tier, step)))),
    );
  draw();
  const name = h('input', { class: 'gf-step-name', placeholder: t('dl.stepname'), disabled: readOnly });
  const nameError = h('span', { class: 'gf-cell-error' });
  const addStep = readOnly
    ? null
    : h(
        'form',
        {
          class: 'gf-add-step',
          onsubmit: (event) => {
            event.preventDefault();
            const step = name.value.trim();
            if (!/^[a-z][a-z0-9_]*$/.test(step)) {
              nameError.textContent = t('err.stepname');
              return;
            }
            nameError.textContent = '';
            for (const tier of tiers) if (!draft.deadline(tier, step)) draft.setDeadline(tier, step, { amount: 1, unit: 'working_days' });
            name.value = '';
            draw();
            onChange();
          },
        },
        name,
        h('button', { type: 'submit' }, t('dl.addstep')),
        nameError,
      );
  mount(
    container,
    h('div', { class: 'gf-table-head' }, h('h2', null, t('dl.title'))),
    h(
      'table',
      { class: 'gf-table gf-deadlines' },
      h('thead', null, h('tr', null, h('th', null, t('dl.step')), tiers.map((tier) => h('th', null, t(`tier.${tier}`))))),
      body,
    ),
    addStep,
  );
}
