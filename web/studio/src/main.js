// govflow's policy studio (/studio/): sign in with a bearer token, browse a district's pack
// versions, edit diagrams, decision tables and rule tables, validate while editing with the
// server's own validation, save a new staged version, compare versions, activate and roll back,
// and follow a case on its diagram. Everything goes through the public REST API.
import './studio.css';
import { ApiError, api, getToken, setToken } from '../../common/api.js';
import { $, debounce, formatTime, h, mount } from '../../common/dom.js';
import { getLang, setLang, translator } from '../../common/i18n.js';
import { Draft, RESPONSIBILITY, nextVersion, validVersion } from './draft.js';
import strings from './strings.js';
import { catalogIndex, renderDeadlines, renderResponsibility } from './tables.js';

const lang = getLang();
setLang(lang);
const t = translator(strings);
document.title = t('title');

const TABLE_RESPONSIBILITY = '@responsibility';
const TABLE_DEADLINES = '@deadlines';

/** Everything the page knows; exposed as window.govflowStudio for tests and benchmarks. */
const S = {
  me: null,
  vocab: null,
  perms: {},
  versions: [],
  described: new Map(),
  files: new Map(),
  current: null, // the describe() of the version being edited
  catalog: null,
  forms: {},
  draft: null,
  path: null,
  editor: null,
  dmn: null,
  table: null,
  issues: [],
  validation: 'idle',
  readOnly: true,
  seq: 0,
  revision: 0, // counts edits; the validation result is for `validated`
  validated: -1,
};
window.govflowStudio = S;
/** Validate the draft now (what the page does 500 ms after an edit); resolves when drawn. */
S.validateNow = () => {
  scheduleValidate.cancel();
  return validate();
};

const app = document.getElementById('app');

// ---- messages ---------------------------------------------------------------------------

function message(kind, text) {
  const box = $('.gf-message');
  if (!box) return;
  box.dataset.kind = kind;
  box.textContent = text;
  box.hidden = !text;
}

function problemText(err) {
  if (!(err instanceof ApiError)) return t('error', { detail: err.message || String(err) });
  if (err.status === 403) return t('denied', { detail: err.message });
  return t('error', { detail: err.message });
}

// ---- signing in -------------------------------------------------------------------------

function signInScreen(note) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, placeholder: t('signin.token') });
  mount(
    app,
    h(
      'div',
      { class: 'gf-signin' },
      h('h1', null, t('title')),
      h('p', { class: 'gf-sub' }, t('subtitle')),
      h(
        'form',
        {
          id: 'signin',
          onsubmit: (event) => {
            event.preventDefault();
            setToken(input.value.trim());
            boot();
          },
        },
        h('label', { for: 'token' }, t('signin.token')),
        input,
        h('p', { class: 'gf-hint' }, t('signin.hint')),
        h('button', { type: 'submit' }, t('signin.go')),
        note ? h('p', { class: 'gf-message', dataset: { kind: 'error' } }, note) : null,
      ),
      langButton(),
    ),
  );
  input.focus();
}

function langButton() {
  return h('button', {
    type: 'button',
    class: 'gf-lang',
    onclick: () => {
      setLang(lang === 'en' ? 'zh' : 'en');
      location.reload();
    },
  }, t('lang.switch'));
}

async function boot() {
  if (!getToken()) return signInScreen();
  performance.mark('gf-boot');
  // the modeler's code loads while the first answers come back; so does what the route opens
  S.editorModule = import('./editor.js');
  S.editorModule.catch(() => {});
  const [view, name, version, ...rest] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (view === 'edit' && name && version) {
    const path = rest.join('/');
    const early = [describe(name, version), ...['catalog.yaml', 'processes/forms.yaml', RESPONSIBILITY].map((f) => readData(name, version, f))];
    if (path.endsWith('.bpmn') || path.endsWith('.dmn')) early.push(readFile(name, version, path));
    early.forEach((call) => call.catch(() => {}));
  }
  const calls = [api('/api/v1/me'), api('/api/v1/packs/vocabulary'), api('/api/v1/packs/permissions'), api('/api/v1/packs')];
  calls.forEach((call) => call.catch(() => {}));
  try {
    S.me = await calls[0];
  } catch (err) {
    setToken('');
    return signInScreen(err instanceof ApiError && err.status === 401 ? t('signin.bad', { detail: err.message }) : problemText(err));
  }
  const [vocab, perms, versions] = await Promise.all(calls.slice(1));
  S.vocab = vocab;
  S.perms = Object.fromEntries(perms.map((p) => [p.district, p.actions]));
  performance.mark('gf-me');
  shell();
  S.versions = versions;
  S.versionsAt = Date.now();
  renderPacks();
  performance.mark('gf-versions');
  window.addEventListener('hashchange', route);
  await route();
}

const may = (district, action) => (S.perms[district] || []).includes(action);

// ---- the shell --------------------------------------------------------------------------

function shell() {
  mount(
    app,
    h(
      'header',
      { class: 'gf-top' },
      h('h1', null, t('title')),
      h('span', { class: 'gf-user' }, `${S.me.name || S.me.id} (${S.me.id})`),
      langButton(),
      h('button', { type: 'button', class: 'gf-signout', onclick: () => (setToken(''), (location.hash = ''), location.reload()) }, t('signout')),
    ),
    h(
      'div',
      { class: 'gf-body' },
      h('aside', { class: 'gf-side' }, h('section', { class: 'gf-packs' }), h('section', { class: 'gf-files' }), caseBox()),
      h(
        'main',
        { class: 'gf-main' },
        h('div', { class: 'gf-bar' }),
        h('div', { class: 'gf-message', hidden: true }),
        h('div', { class: 'gf-view' }),
        h('section', { class: 'gf-issues', hidden: true }),
      ),
    ),
  );
}

function caseBox() {
  const input = h('input', { id: 'case-id', placeholder: t('case.id') });
  return h(
    'section',
    { class: 'gf-case-box' },
    h('h2', null, t('nav.case')),
    h('form', { onsubmit: (e) => (e.preventDefault(), input.value.trim() && (location.hash = `#/case/${input.value.trim()}`)) }, input, h('button', { id: 'case-open', type: 'submit' }, t('case.show'))),
  );
}

async function refreshVersions() {
  S.versions = await api('/api/v1/packs');
  S.versionsAt = Date.now();
  renderPacks();
}

function versionState(version, list) {
  const active = list.findIndex((v) => v.active);
  const at = list.indexOf(version);
  if (version.active) return 'active';
  return active >= 0 && at > active ? 'staged' : active < 0 ? 'staged' : 'older';
}

function renderPacks() {
  const box = $('.gf-packs');
  if (!box) return;
  const districts = [...new Set(S.versions.map((v) => v.district))];
  if (!districts.length) {
    mount(box, h('h2', null, t('packs.title')), h('p', { class: 'gf-empty' }, t('packs.none')));
    return;
  }
  mount(
    box,
    h('h2', null, t('packs.title')),
    districts.map((district) => {
      const list = S.versions.filter((v) => v.district === district);
      const names = [...new Set(list.map((v) => v.name))];
      return h(
        'div',
        { class: 'gf-district', dataset: { district } },
        h('h3', null, district),
        names.map((name) =>
          h(
            'ul',
            { class: 'gf-versions' },
            list
              .filter((v) => v.name === name)
              .reverse()
              .map((v) => {
                const state = versionState(v, list);
                const current = S.current && S.current.name === v.name && S.current.version === v.version;
                return h(
                  'li',
                  { class: `gf-version gf-${state}${current ? ' gf-current' : ''}`, dataset: { name: v.name, version: v.version, state } },
                  h('a', { href: `#/edit/${v.name}/${v.version}`, class: 'gf-open' }, `${v.name} ${v.version}`),
                  h('span', { class: `gf-badge gf-badge-${state}` }, t(`version.${state}`)),
                  h('div', { class: 'gf-sub' }, t('version.deployed', { by: v.deployed_by, at: formatTime(v.deployed_at, lang) })),
                  !v.active && may(district, 'activate_pack')
                    ? h('button', { type: 'button', class: 'gf-activate', onclick: () => activate(v) }, t('version.activate'))
                    : null,
                );
              }),
          ),
        ),
        may(district, 'activate_pack') && list.length > 1
          ? h('button', { type: 'button', class: 'gf-rollback', onclick: () => rollback(district) }, t('version.rollback'))
          : null,
        !may(district, 'deploy_pack') ? h('p', { class: 'gf-hint' }, t('packs.readonly')) : null,
      );
    }),
  );
}

async function activate(v) {
  if (!confirm(t('version.activate.confirm', v))) return;
  try {
    await api(`/api/v1/packs/${v.name}/${v.version}/activate`, { method: 'POST' });
    await refreshVersions();
    message('ok', t('version.activated', v));
  } catch (err) {
    message('error', problemText(err));
  }
}

async function rollback(district) {
  if (!confirm(t('version.rollback.confirm', { district }))) return;
  try {
    const now = await api('/api/v1/packs/rollback', { method: 'POST', body: { district } });
    await refreshVersions();
    message('ok', t('version.rolledback', now));
  } catch (err) {
    message('error', problemText(err));
  }
}

// ---- routing ----------------------------------------------------------------------------

async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const seq = ++S.seq;
  try {
    if (parts[0] === 'edit' && parts[1] && parts[2]) {
      const path = parts.slice(3).join('/');
      if (path.endsWith('.bpmn') || path.endsWith('.dmn')) readFile(parts[1], parts[2], path).catch(() => {});
      await openVersion(parts[1], parts[2]);
      if (seq === S.seq) await openFile(parts.slice(3).join('/') || defaultFile());
    } else if (parts[0] === 'diff' && parts[3]) {
      await showDiff(parts[1], parts[2], parts[3]);
    } else if (parts[0] === 'case' && parts[1]) {
      await showCase(parts[1]);
    } else {
      const first = S.versions.find((v) => v.active) || S.versions[S.versions.length - 1];
      if (first) location.replace(`#/edit/${first.name}/${first.version}`);
      else {
        viewLayout('empty');
        mount($('.gf-view'), h('p', { class: 'gf-empty' }, S.versions.length ? t('editor.select') : t('packs.none')));
      }
    }
  } catch (err) {
    message('error', problemText(err));
  }
}

function defaultFile() {
  const diagrams = S.current.files.filter((f) => f.path.endsWith('.bpmn'));
  const main = diagrams.find((f) => f.path.endsWith(`/${S.current.process}.bpmn`));
  return (main || diagrams[0] || { path: TABLE_RESPONSIBILITY }).path;
}

// ---- files of a version -----------------------------------------------------------------

function describe(name, version) {
  const key = `${name}@${version}`;
  if (!S.described.has(key)) {
    const described = api(`/api/v1/packs/${name}/${version}`);
    described.catch(() => S.described.delete(key));
    S.described.set(key, described);
  }
  return S.described.get(key);
}

function readFile(name, version, path) {
  const key = `${name}@${version}:${path}`;
  if (!S.files.has(key)) {
    const text = api(`/api/v1/packs/${name}/${version}/files/${path}`, { as: 'text' });
    text.catch(() => S.files.delete(key));
    S.files.set(key, text);
  }
  return S.files.get(key);
}

/** A YAML file of a version, parsed by the server. */
function readData(name, version, path) {
  const key = `${name}@${version}:data:${path}`;
  if (!S.files.has(key)) {
    const data = api(`/api/v1/packs/${name}/${version}/data/${path}`);
    data.catch(() => S.files.delete(key));
    S.files.set(key, data);
  }
  return S.files.get(key);
}

async function openVersion(name, version) {
  if (S.current && S.current.name === name && S.current.version === version && S.draft) return;
  if (S.draft && S.draft.changes().length && !confirm(t('draft.leave.confirm'))) {
    location.hash = `#/edit/${S.current.name}/${S.current.version}`;
    throw new Error(t('draft.leave.confirm'));
  }
  closeEditors();
  // a draft starts from the versions as they are now (its stale check compares with them)
  if (Date.now() - (S.versionsAt || 0) > 30_000) await refreshVersions();
  const described = await describe(name, version);
  performance.mark('gf-described');
  const has = (path) => described.files.some((f) => f.path === path);
  const [catalog, forms, responsibility] = await Promise.all([
    has('catalog.yaml') ? readData(name, version, 'catalog.yaml') : {},
    has('processes/forms.yaml') ? readData(name, version, 'processes/forms.yaml') : {},
    has(RESPONSIBILITY) ? readData(name, version, RESPONSIBILITY) : null,
  ]);
  S.current = described;
  S.catalog = catalogIndex(catalog);
  S.forms = forms || {};
  S.readOnly = !may(described.district, 'deploy_pack');
  const siblings = S.versions.filter((v) => v.name === name);
  S.draft = new Draft(described, siblings.length ? siblings[siblings.length - 1].version : version, responsibility?.entries || []);
  S.draft.proposed = nextVersion(version, siblings.map((v) => v.version));
  S.issues = [];
  S.validation = 'idle';
  S.validated = -1;
  S.revision = 0;
  S.path = null;
  renderPacks();
  renderFiles();
  renderBar();
  renderIssues();
}

function renderFiles() {
  const box = $('.gf-files');
  if (!box || !S.current) return;
  const { name, version } = S.current;
  const link = (path, label) =>
    h('li', null, h('a', { href: `#/edit/${name}/${version}/${path}`, class: `gf-file${S.path === path ? ' active' : ''}`, dataset: { path } }, label || path));
  const diagrams = S.current.files.filter((f) => f.path.endsWith('.bpmn'));
  const decisions = S.current.files.filter((f) => f.path.endsWith('.dmn'));
  const older = S.versions.filter((v) => v.name === name && v.version !== version);
  const compareTo = older.length ? older[older.length - 1] : null;
  mount(
    box,
    h('h2', null, `${name} ${version}`),
    h('h3', null, t('files.diagrams')),
    h('ul', null, diagrams.length ? diagrams.map((f) => link(f.path)) : h('li', null, t('files.none'))),
    h('h3', null, t('files.decisions')),
    h('ul', null, decisions.length ? decisions.map((f) => link(f.path)) : h('li', null, t('files.none'))),
    h('h3', null, t('files.tables')),
    h('ul', null, link(TABLE_RESPONSIBILITY, t('files.responsibility')), link(TABLE_DEADLINES, t('files.deadlines'))),
    compareTo ? h('p', null, h('a', { href: `#/diff/${name}/${compareTo.version}/${version}`, class: 'gf-compare' }, `${t('nav.compare')}: ${compareTo.version} → ${version}`)) : null,
  );
}

function closeEditors() {
  S.editor?.destroy();
  S.dmn?.destroy();
  S.editor = null;
  S.dmn = null;
  S.table = null;
}

/** Put what the open editor holds into the draft (before validating, saving or switching). */
async function capture() {
  if (!S.draft || S.readOnly) return;
  const path = S.path;
  if (S.editor && path?.endsWith('.bpmn')) {
    if (S.editor.dirty() || S.draft.files[path] !== undefined) S.draft.setFile(path, await S.editor.xml());
  } else if (S.dmn && path?.endsWith('.dmn')) {
    if ((await S.dmn.dirty()) || S.draft.files[path] !== undefined) S.draft.setFile(path, await S.dmn.xml());
  }
}

function viewLayout(kind) {
  const view = $('.gf-view');
  view.dataset.kind = kind;
  $('.gf-issues').hidden = kind !== 'edit' || S.readOnly;
  $('.gf-bar').hidden = kind !== 'edit';
  return view;
}

async function openFile(path) {
  await capture();
  const { name, version } = S.current;
  S.path = path;
  renderFiles();
  const view = viewLayout('edit');
  const context = editorContext();
  document.body.dataset.ready = '';
  if (path === TABLE_RESPONSIBILITY || path === TABLE_DEADLINES) {
    closeEditors();
    const box = h('div', { class: 'gf-tablewrap' });
    mount(view, box);
    drawTable(box);
  } else if (path.endsWith('.bpmn')) {
    S.dmn?.destroy();
    S.dmn = null;
    const xml = S.draft.files[path] ?? (await readFile(name, version, path));
    performance.mark('gf-xml');
    if (!S.editor) {
      const { BpmnEditor } = await (S.editorModule || import('./editor.js'));
      performance.mark('gf-editor-loaded');
      const canvas = h('div', { class: 'gf-canvas' });
      const panel = h('div', { class: 'gf-props' });
      mount(view, h('div', { class: 'gf-editor' }, canvas, panel));
      S.editor = new BpmnEditor({ canvas, panel, lang, context, onChange: () => changed() });
    }
    let opened;
    try {
      opened = await S.editor.open(xml);
      performance.mark('gf-opened');
    } catch (err) {
      message('error', t('bad.file', { path, kind: 'BPMN', detail: err.message }));
      return;
    }
    message(opened.layoutGenerated ? 'info' : '', opened.layoutGenerated ? t('layout.generated') : '');
    S.editor.showIssues(issuesOf(path));
    const draft = S.draft;
    // checked once the diagram is shown: what a save would lose, conditions a layout reorders
    opened.checked.then(({ lost, reordered }) => {
      if (draft !== S.draft || S.path !== path) return;
      if (lost.length) draft.blocked[path] = lost;
      else delete draft.blocked[path];
      if (lost.length) message('error', t('bad.lost', { lost: lost.join('; ') }));
      else if (reordered.length) message('error', `${t('layout.generated')} ${t('layout.reordered', { gateways: reordered.join(', ') })}`);
    });
  } else if (path.endsWith('.dmn')) {
    closeEditors();
    const { DmnEditor } = await import('./dmn-editor.js');
    const canvas = h('div', { class: 'gf-dmn' });
    mount(view, canvas);
    S.dmn = new DmnEditor({ canvas, lang, onChange: () => changed() });
    try {
      await S.dmn.open(S.draft.files[path] ?? (await readFile(name, version, path)));
      message('', '');
    } catch (err) {
      message('error', t('bad.file', { path, kind: 'DMN', detail: err.message }));
      return;
    }
  }
  renderBar();
  document.body.dataset.ready = path;
  if (!S.readOnly && S.validated < 0 && S.validation === 'idle') validate(); // the opened version, checked once shown
}

function editorContext() {
  return {
    t,
    lang,
    vocab: S.vocab,
    forms: () => S.forms,
    deadlines: {
      get: (tier, step) => S.draft.deadline(tier, step),
      set: (tier, step, limit) => {
        S.draft.setDeadline(tier, step, limit);
        changed();
      },
      steps: () => S.draft.steps(),
    },
  };
}

function drawTable(box) {
  const options = { draft: S.draft, cat: S.catalog, vocab: S.vocab, t, readOnly: S.readOnly, issues: S.issues, onChange: () => changed() };
  S.table = S.path === TABLE_RESPONSIBILITY ? renderResponsibility(box, options) : (renderDeadlines(box, options), null);
}

function issuesOf(path) {
  return S.issues.filter((i) => i.file === path);
}

// ---- the draft bar: status, validation, save ----------------------------------------------

const scheduleValidate = debounce(() => validate(), 500);

function changed() {
  S.revision += 1;
  renderBar();
  scheduleValidate();
}

function renderBar() {
  const bar = $('.gf-bar');
  if (!bar || !S.draft) return;
  const changes = S.draft.changes();
  const state = S.validation;
  const status = {
    idle: '',
    running: t('validate.running'),
    ok: t('validate.ok'),
    issues: t('validate.issues', { n: S.issues.length }),
    error: S.validationError || '',
  }[state];
  const versionInput = h('input', { id: 'save-version', value: S.draft.proposed, size: 10, 'aria-label': t('save.version') });
  versionInput.addEventListener('input', () => (S.draft.proposed = versionInput.value.trim()));
  mount(
    bar,
    h('span', { class: 'gf-draft' }, t('draft.base', { name: S.draft.name, version: S.draft.base }), ' · ', changes.length ? t('draft.changes', { n: changes.length }) : t('draft.none')),
    S.readOnly ? h('span', { class: 'gf-badge gf-badge-readonly' }, t('editor.readonly')) : h('span', { class: 'gf-validation', dataset: { state } }, status),
    S.readOnly
      ? null
      : h(
          'span',
          { class: 'gf-save' },
          h('label', { for: 'save-version' }, t('save.version')),
          versionInput,
          S.path?.endsWith('.bpmn') || S.path?.endsWith('.dmn')
            ? h('label', { class: 'gf-import', title: t('import.hint') }, t('import.file'), h('input', { id: 'import-file', type: 'file', accept: '.bpmn,.dmn,.xml', onchange: (e) => importFile(e.target) }))
            : null,
          h('button', { id: 'save', type: 'button', onclick: save, disabled: !changes.length }, t('save.go')),
          changes.length ? h('button', { type: 'button', class: 'gf-discard', onclick: discard }, t('draft.discard')) : null,
        ),
  );
  bar.title = changes.join('\n');
}

/** Replace the open diagram or decision table with a file from disk (checked first; nothing changes if it is not one). */
async function importFile(input) {
  const file = input.files?.[0];
  input.value = '';
  const path = S.path;
  if (!file || !path) return;
  const kind = path.endsWith('.dmn') ? 'DMN' : 'BPMN';
  const text = await file.text();
  const editor = kind === 'DMN' ? S.dmn : S.editor;
  const previous = await editor.xml();
  try {
    if (kind === 'BPMN') await S.editor.check(text);
    else if (!/<(\w+:)?definitions\b[^>]*dmn/i.test(text)) throw new Error('no DMN definitions');
    await editor.open(text);
  } catch (err) {
    await editor.open(previous).catch(() => {});
    return message('error', t('bad.file', { path: file.name, kind, detail: err.message }));
  }
  S.draft.setFile(path, await editor.xml());
  message('info', t('import.done', { file: file.name, path }));
  changed();
}

async function validate() {
  if (!S.draft || S.readOnly) return null;
  const draft = S.draft;
  const revision = S.revision;
  await capture();
  S.validation = 'running';
  renderBar();
  try {
    const result = await api('/api/v1/packs/validate', { method: 'POST', body: draft.zip(validVersion(draft.proposed) ? draft.proposed : `${draft.base}-draft`), type: 'application/zip' });
    if (draft !== S.draft) return null;
    S.issues = result.issues;
    S.validation = result.valid ? 'ok' : 'issues';
    S.validated = revision;
    if (result.valid && $('.gf-message')?.textContent === t('save.invalid')) message('', '');
  } catch (err) {
    S.validation = 'error';
    S.validationError = t('validate.failed', { detail: err.message });
    S.issues = err.issues?.map((i) => ({ ...i, text: i.text || `${i.file}: ${i.message}` })) || [];
  }
  renderBar();
  renderIssues();
  if (S.editor && S.path?.endsWith('.bpmn')) S.editor.showIssues(issuesOf(S.path));
  if (S.dmn && S.path?.endsWith('.dmn')) S.dmn.showIssues(issuesOf(S.path));
  const box = $('.gf-tablewrap');
  if (box && !box.contains(document.activeElement)) drawTable(box);
  return S.validation;
}

function renderIssues() {
  const box = $('.gf-issues');
  if (!box) return;
  box.hidden = S.readOnly || !S.draft;
  mount(
    box,
    h('h2', null, t('issues.title')),
    S.issues.length
      ? h(
          'ul',
          null,
          S.issues.map((issue) =>
            h(
              'li',
              { dataset: { file: issue.file, element: issue.element || '' } },
              h('a', { href: '#', onclick: (e) => (e.preventDefault(), jumpTo(issue)) }, issue.text),
            ),
          ),
        )
      : h('p', { class: 'gf-empty' }, S.validation === 'ok' ? t('issues.none') : ''),
  );
}

async function jumpTo(issue) {
  const { name, version } = S.current;
  if (issue.file.endsWith('.bpmn') || issue.file.endsWith('.dmn')) {
    if (S.path !== issue.file && S.current.files.some((f) => f.path === issue.file)) {
      location.hash = `#/edit/${name}/${version}/${issue.file}`;
      await new Promise((resolve) => setTimeout(resolve, 0));
      await route();
    }
    if (issue.element) (S.path.endsWith('.dmn') ? S.dmn : S.editor)?.jumpTo(issue.element);
  } else if (issue.file === RESPONSIBILITY) {
    if (S.path !== TABLE_RESPONSIBILITY) location.hash = `#/edit/${name}/${version}/${TABLE_RESPONSIBILITY}`;
    setTimeout(() => issue.element && S.table?.focus(issue.element), 50);
  } else if (issue.file === 'pack.yaml' && /settings\.deadlines/.test(issue.message)) {
    location.hash = `#/edit/${name}/${version}/${TABLE_DEADLINES}`;
  }
}

async function discard() {
  if (!confirm(t('draft.discard.confirm', { name: S.draft.name, version: S.draft.base }))) return;
  const { name, version } = S.current;
  S.draft = null;
  S.current = null;
  closeEditors();
  await openVersion(name, version);
  await openFile(S.path || defaultFile());
}

async function save() {
  const draft = S.draft;
  await capture();
  if (!draft.changes().length) return message('info', t('save.nothing'));
  if (!validVersion(draft.proposed)) return message('error', t('save.badversion'));
  if (S.editor && S.path?.endsWith('.bpmn')) await S.editor.checked;
  const blocked = Object.entries(draft.blocked).filter(([path]) => draft.files[path] !== undefined);
  if (blocked.length) return message('error', t('bad.lost', { lost: blocked.map(([, lost]) => lost.join('; ')).join('; ') }));
  performance.mark('gf-save');
  message('info', t('save.saving'));
  scheduleValidate.cancel();
  const state = S.validation === 'ok' && S.validated === S.revision ? 'ok' : await validate();
  if (state !== 'ok') return message('error', state === 'issues' ? t('save.invalid') : S.validationError);
  const version = draft.proposed;
  performance.mark('gf-save-validated');
  try {
    await api(`/api/v1/packs?activate=false&if_latest=${encodeURIComponent(draft.latest)}`, { method: 'POST', body: draft.zip(version), type: 'application/zip' });
  } catch (err) {
    if (err.status === 409 && err.problem?.context?.latest !== undefined) return message('error', t('save.stale', { detail: err.message }));
    if (err.status === 409) return message('error', t('save.exists', { version }));
    if (err.status === 422 && err.issues.length) {
      S.issues = err.issues.map((i) => ({ ...i, text: i.text || `${i.file}${i.line ? `:${i.line}` : ''}${i.element ? ` [${i.element}]` : ''}: ${i.message}` }));
      renderIssues();
      return message('error', t('save.invalid'));
    }
    return message('error', problemText(err));
  }
  performance.mark('gf-saved');
  const base = draft.base;
  // what the diff needs: the stored diagrams are the bytes just sent; the rest is fetched meanwhile
  for (const [path, content] of Object.entries(draft.files)) S.files.set(`${draft.name}@${version}:${path}`, Promise.resolve(content));
  describe(draft.name, version).catch(() => {});
  readData(draft.name, version, 'catalog.yaml').catch(() => {});
  S.draft = null;
  S.current = null;
  closeEditors();
  await refreshVersions();
  location.hash = `#/diff/${draft.name}/${base}/${version}`;
  message('ok', t('save.done', { name: draft.name, version }));
}

// ---- compare and case views ---------------------------------------------------------------

async function showDiff(name, a, b) {
  await capture();
  closeEditors();
  S.current = null;
  S.draft = null;
  renderPacks();
  mount($('.gf-files'));
  const view = viewLayout('diff');
  document.body.dataset.ready = '';
  const versions = S.versions.filter((v) => v.name === name).map((v) => v.version);
  const pick = (id, value) => h('select', { id }, versions.map((v) => h('option', { value: v, selected: v === value }, v)));
  const from = pick('diff-from', a);
  const to = pick('diff-to', b);
  const result = h('div', { class: 'gf-diff' }, t('loading'));
  mount(
    view,
    h(
      'div',
      { class: 'gf-diff-head' },
      h('h2', null, `${t('diff.title')} · ${name}`),
      h('label', null, t('diff.from'), ' ', from),
      h('label', null, t('diff.to'), ' ', to),
      h('button', { type: 'button', id: 'diff-go', onclick: () => (location.hash = `#/diff/${name}/${from.value}/${to.value}`) }, t('diff.go')),
    ),
    result,
  );
  performance.mark('gf-diff-start');
  const [da, db, catalog, { renderDiff }] = await Promise.all([describe(name, a), describe(name, b), readData(name, b, 'catalog.yaml'), import('./diff.js')]);
  performance.mark('gf-diff-fetched');
  const counts = await renderDiff(result, {
    a: da,
    b: db,
    read: (version, path) => readFile(name, version, path),
    data: (version, path) => readData(name, version, path),
    cat: catalogIndex(catalog),
    t,
    lang,
  });
  result.dataset.counts = JSON.stringify(counts);
  performance.mark('gf-diff-done');
  document.body.dataset.ready = 'diff';
}

async function showCase(id) {
  await capture();
  closeEditors();
  S.current = null;
  S.draft = null;
  renderPacks();
  mount($('.gf-files'));
  const view = viewLayout('case');
  document.body.dataset.ready = '';
  mount(view, h('p', null, t('loading')));
  const { renderCase } = await import('./caseview.js');
  try {
    await renderCase(view, { caseId: id, t, lang });
    message('', '');
  } catch (err) {
    mount(view);
    if (err.status === 404 || err.status === 422) return message('error', t('case.notfound'));
    if (err.status === 403) return message('error', t('case.denied'));
    throw err;
  }
  document.body.dataset.ready = 'case';
}

boot();
