// A draft: the changes a policy officer makes to one pack version, kept as the smallest pack
// that extends that version (see engine/packs/compose.py): a pack.yaml naming the base and the
// settings that differ, the diagrams and decision tables that changed, and the responsibility
// entries that changed. The server validates and stores exactly this zip, through the same
// POST /api/v1/packs every client uses; the page has no other way in.
import { dump } from 'js-yaml';
import { zip } from '../../common/zip.js';

export const RESPONSIBILITY = 'policies/responsibility.yaml';
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$/;

const clone = (value) => JSON.parse(JSON.stringify(value ?? null));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The next free version after `version` among `taken`: 1.0.0 → 1.0.1 (→ 1.0.2 if taken). */
export function nextVersion(version, taken) {
  const match = /^(.*?)(\d+)([^\d]*)$/.exec(version);
  let candidate = match ? `${match[1]}${Number(match[2]) + 1}${match[3]}` : `${version}.1`;
  while (taken.includes(candidate)) {
    const m = /^(.*?)(\d+)([^\d]*)$/.exec(candidate);
    candidate = `${m[1]}${Number(m[2]) + 1}${m[3]}`;
  }
  return candidate;
}

export function validVersion(version) {
  return VERSION.test(version || '');
}

/** A responsibility entry as the table edits it. */
export function normalEntry(entry) {
  const out = { matter: String(entry.matter || ''), main: String(entry.main || ''), cooperating: [...(entry.cooperating || [])].map(String) };
  if (entry.time_limit) out.time_limit = { amount: Number(entry.time_limit.amount), unit: String(entry.time_limit.unit) };
  return out;
}

export class Draft {
  /**
   * @param base {name, version, district, settings} of the version the draft starts from
   * @param latest the newest deployed version of the pack when the draft started (stale check)
   * @param responsibility the base's responsibility entries (or null if it has none)
   */
  constructor({ name, version, district, settings }, latest, responsibility) {
    this.name = name;
    this.base = version;
    this.district = district;
    this.latest = latest;
    this.baseDeadlines = clone(settings?.deadlines || {});
    this.deadlines = clone(this.baseDeadlines);
    this.baseEntries = (responsibility || []).map(normalEntry);
    this.entries = clone(this.baseEntries);
    this.files = {}; // path -> edited content (diagrams, decision tables)
    this.blocked = {}; // path -> what a save of it would lose (saving refused)
  }

  setFile(path, content) {
    this.files[path] = content;
  }

  dropFile(path) {
    delete this.files[path];
  }

  /** deadlines.get(tier, step) / set(tier, step, limit) / steps(): what the tables and panel edit. */
  deadline(tier, step) {
    return this.deadlines[tier]?.[step];
  }

  setDeadline(tier, step, limit) {
    this.deadlines[tier] = this.deadlines[tier] || {};
    this.deadlines[tier][step] = limit;
  }

  steps() {
    const steps = new Set();
    for (const tier of Object.values(this.deadlines)) for (const step of Object.keys(tier || {})) steps.add(step);
    return [...steps];
  }

  /** Only the deadline cells that differ from the base: {tier: {step: limit}}. */
  deadlineOverride() {
    const out = {};
    for (const [tier, steps] of Object.entries(this.deadlines)) {
      for (const [step, limit] of Object.entries(steps || {})) {
        if (!same(limit, this.baseDeadlines[tier]?.[step])) {
          out[tier] = out[tier] || {};
          out[tier][step] = limit;
        }
      }
    }
    return out;
  }

  /** Changed and new entries, and removals ({matter, remove: true}), merged by matter on the server. */
  responsibilityOverride() {
    const before = new Map(this.baseEntries.map((e) => [e.matter, e]));
    const now = new Map(this.entries.map((e) => [e.matter, e]));
    const out = [];
    for (const entry of this.entries) {
      if (!same(normalEntry(entry), before.get(entry.matter))) out.push(normalEntry(entry));
    }
    for (const matter of before.keys()) if (!now.has(matter)) out.push({ matter, remove: true });
    return out;
  }

  changes() {
    const list = Object.keys(this.files).map((path) => path);
    const deadlines = this.deadlineOverride();
    for (const [tier, steps] of Object.entries(deadlines)) for (const step of Object.keys(steps)) list.push(`deadlines.${tier}.${step}`);
    for (const entry of this.responsibilityOverride()) list.push(`responsibility: ${entry.matter}`);
    return list;
  }

  /** The draft as pack files, for `version` (the version it would be saved as). */
  packFiles(version) {
    const manifest = { name: this.name, version, extends: `${this.name}@${this.base}` };
    const deadlines = this.deadlineOverride();
    if (Object.keys(deadlines).length) manifest.settings = { deadlines };
    const files = { 'pack.yaml': dump(manifest, { lineWidth: 120 }) };
    for (const [path, content] of Object.entries(this.files)) files[path] = content;
    const entries = this.responsibilityOverride();
    if (entries.length) files[RESPONSIBILITY] = dump({ district: this.district, entries }, { lineWidth: 120, flowLevel: 2 });
    return files;
  }

  zip(version) {
    return zip(this.packFiles(version));
  }
}
