// The supervision dashboard (监督考核): the public board, rates per unit, the ranking, trends,
// overdue and escalated work, early warnings. Every figure comes from govflow's API, which
// computes it from the append-only record; the page only shows it.
import * as echarts from 'echarts/core';
import { LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

import { api, getToken, setToken } from '../../common/api.js';
import { h, mount } from '../../common/dom.js';
import { getLang, setLang, translator } from '../../common/i18n.js';
import { FIGURES, STRINGS } from './strings.js';
import './dashboard.css';

echarts.use([LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

const t = translator(STRINGS);
const state = { from: null, to: null, metric: 'completion_rate', unit: null, chart: null, afterMount: [] };

/** A figure as shown: ratios as percentages, means with one decimal, counts as integers. */
export function show(name, value) {
  if (value === null || value === undefined) return '—';
  if (name.endsWith('_count')) return String(Math.round(value));
  if (name === 'satisfaction' || name.endsWith('_rating') || name.endsWith('_minutes') || name === 'call_accuracy') {
    return value.toFixed(1);
  }
  return `${(value * 100).toFixed(1)}%`;
}

function label([, zh, en]) {
  return getLang() === 'en' ? en : zh;
}

function windowQuery() {
  const q = new URLSearchParams();
  if (state.from) q.set('from', state.from);
  if (state.to) q.set('to', state.to);
  return q;
}

async function board() {
  const data = await api('/api/v1/board');
  return h('section', { id: 'board' },
    h('h2', {}, t('board')),
    h('table', { class: 'gf-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('unit')), data.stages.map((s) => h('th', {}, getLang() === 'en' ? s.stage : s.name)))),
      h('tbody', {}, data.rows.map((row) => h('tr', { dataset: { unit: row.unit } },
        h('th', {}, row.name),
        data.stages.map((s) => h('td', { dataset: { stage: s.stage, count: row.counts[s.stage] } }, row.counts[s.stage])))))));
}

async function rates() {
  const q = windowQuery();
  q.set('level', 'street');
  const data = await api(`/api/v1/rates?${q}`);
  state.unit = state.unit || data.rows[0]?.unit;
  return h('section', { id: 'rates' },
    h('h2', {}, `${t('rates')} (${data.from} – ${data.to})`),
    h('table', { class: 'gf-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('unit')), FIGURES.map((f) => h('th', {}, label(f))))),
      h('tbody', {}, data.rows.map((row) => h('tr', {
        dataset: { unit: row.unit },
        class: row.unit === state.unit ? 'gf-selected' : '',
        onclick: () => { state.unit = row.unit; rerender(); },
      },
      h('th', {}, row.name),
      FIGURES.map(([name]) => h('td', { dataset: { metric: name, value: row[name] ?? '' } }, show(name, row[name]))))))));
}

async function ranking() {
  const q = windowQuery();
  q.set('metric', state.metric);
  const data = await api(`/api/v1/rates/ranking?${q}`);
  const picker = h('select', { id: 'metric', onchange: (e) => { state.metric = e.target.value; rerender(); } },
    FIGURES.map((f) => h('option', { value: f[0], selected: f[0] === state.metric }, label(f))));
  return h('section', { id: 'ranking' },
    h('h2', {}, t('ranking'), ' ', picker),
    h('table', { class: 'gf-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('rank')), h('th', {}, t('unit')), h('th', {}, t('value')))),
      h('tbody', {}, data.rows.map((row) => h('tr', { dataset: { unit: row.unit, rank: row.rank ?? '' } },
        h('td', {}, row.rank ?? '—'), h('th', {}, row.name),
        h('td', { dataset: { value: row.value ?? '' } }, show(state.metric, row.value)))))));
}

async function trend() {
  const q = windowQuery();
  q.set('metric', state.metric);
  if (state.unit) q.set('unit', state.unit);
  const data = await api(`/api/v1/rates/trend?${q}`);
  const el = h('div', { id: 'trend-chart', class: 'gf-chart', dataset: { points: JSON.stringify(data.points) } });
  const section = h('section', { id: 'trend' }, h('h2', {}, `${t('trend')}: ${state.unit || ''}`), el);
  state.afterMount.push(() => {
    state.chart?.dispose();
    state.chart = echarts.init(el, null, { renderer: 'canvas' });
    state.chart.setOption({
      animation: false,
      tooltip: { trigger: 'axis' },
      grid: { left: 48, right: 16, top: 24, bottom: 32 },
      xAxis: { type: 'category', data: data.points.map((p) => p.day) },
      yAxis: { type: 'value' },
      series: [{ name: state.metric, type: 'line', connectNulls: false, data: data.points.map((p) => p.value) }],
    });
  });
  return section;
}

async function overdue() {
  if (!state.unit) return null;
  const q = windowQuery();
  const card = await api(`/api/v1/units/${encodeURIComponent(state.unit)}/scorecard?${q}`);
  return h('section', { id: 'overdue' },
    h('h2', {}, `${t('overdue')}: ${card.name}`),
    h('p', {},
      `${t('overdueCount')}: `, h('b', { dataset: { metric: 'overdue_count' } }, show('overdue_count', card.figures.overdue_count)),
      ` · ${t('escalatedCount')}: `, h('b', { dataset: { metric: 'escalated_count' } }, show('escalated_count', card.figures.escalated_count))),
    h('h3', {}, t('worst')),
    card.worst_cases.length === 0 ? h('p', {}, t('none')) : h('table', { class: 'gf-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('case')), h('th', {}, t('task')), h('th', {}, t('matter')), h('th', {}, t('minutes')))),
      h('tbody', {}, card.worst_cases.map((w) => h('tr', { dataset: { case: w.case_id } },
        h('td', {}, w.case_id.slice(0, 8)), h('td', {}, w.task), h('td', {}, w.matter || '—'), h('td', {}, w.overdue_minutes))))));
}

async function warnings() {
  const rows = await api('/api/v1/warnings?limit=20');
  return h('section', { id: 'warnings' },
    h('h2', {}, t('warnings')),
    rows.length === 0 ? h('p', {}, t('none')) : h('table', { class: 'gf-table' },
      h('thead', {}, h('tr', {}, [t('kind'), t('unit'), t('matter'), t('observed'), t('expected'), t('raisedAt')].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.map((w) => h('tr', { dataset: { warning: w.id, kind: w.kind } },
        h('td', {}, w.kind), h('td', {}, w.unit || w.place || '—'), h('td', {}, w.matter),
        h('td', {}, w.evidence.observed), h('td', {}, w.evidence.expected), h('td', {}, String(w.raised_at).slice(0, 16)))))));
}

/** A section that the signed-in principal may not see says so, instead of breaking the page. */
async function guarded(build) {
  try {
    return await build();
  } catch (err) {
    if (err.status === 401 || err.status === 403) return h('section', { class: 'gf-denied' }, h('p', {}, `${t('noRight')}: ${err.message}`));
    throw err;
  }
}

function header() {
  const token = h('input', { id: 'token', type: 'password', placeholder: t('token'), value: getToken() });
  const from = h('input', { id: 'from', type: 'date', value: state.from || '', onchange: (e) => { state.from = e.target.value || null; rerender(); } });
  const to = h('input', { id: 'to', type: 'date', value: state.to || '', onchange: (e) => { state.to = e.target.value || null; rerender(); } });
  return h('header', { class: 'gf-header' },
    h('h1', {}, `govflow · ${t('title')}`),
    h('div', { class: 'gf-controls' },
      t('from'), from, t('to'), to,
      token,
      h('button', { id: 'sign-in', onclick: () => { setToken(token.value.trim()); state.unit = null; rerender(); } }, t('signIn')),
      getToken() ? h('button', { id: 'sign-out', onclick: () => { setToken(''); state.unit = null; rerender(); } }, t('signOut')) : null,
      h('button', { id: 'lang', onclick: () => { setLang(getLang() === 'en' ? 'zh' : 'en'); location.reload(); } }, t('language'))));
}

let generation = 0;

export async function render() {
  const app = document.getElementById('app');
  const mine = ++generation; // a newer render (e.g. sign-in right after sign-out) wins
  document.body.dataset.ready = 'false';
  state.afterMount = [];
  const sections = [await board()];
  if (getToken()) {
    sections.push(await guarded(rates), await guarded(ranking), await guarded(trend), await guarded(overdue), await guarded(warnings));
  } else {
    sections.push(h('p', { class: 'gf-public' }, t('publicOnly')));
  }
  if (mine !== generation) return;
  mount(app, header(), h('main', {}, sections));
  for (const run of state.afterMount.splice(0)) run();
  document.body.dataset.ready = 'true';
}

/** Render again; an unexpected failure is shown on the page (and marks it for the tests). */
function rerender() {
  render().catch((err) => {
    mount(document.getElementById('app'), h('p', { class: 'gf-error' }, String(err.message || err)));
    document.body.dataset.ready = 'error';
  });
}

setLang(getLang());
rerender();
