// Languages of govflow's pages: Simplified Chinese first, English as a switch (kept per browser).

const LANG_KEY = 'govflow.lang';
export const LANGS = ['zh', 'en'];

export function getLang() {
  return localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh';
}

export function setLang(lang) {
  localStorage.setItem(LANG_KEY, LANGS.includes(lang) ? lang : 'zh');
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}

function fill(template, vars) {
  return vars ? template.replace(/{([^}]+)}/g, (_, key) => (vars[key] ?? `{${key}}`)) : template;
}

/** t(key, vars): the string for the page's language (falling back to Chinese, then the key). */
export function translator(strings) {
  const lang = getLang();
  return (key, vars) => fill(strings[lang]?.[key] ?? strings.zh[key] ?? key, vars);
}

/**
 * A diagram-js module overriding the `translate` service (bpmn-js, dmn-js, properties panel):
 * `dictionary` maps the library's English strings to the page's language.
 */
export function translateModule(dictionary) {
  const translate = (template, replacements) => fill(dictionary[template] ?? template, replacements);
  return { translate: ['value', translate] };
}
