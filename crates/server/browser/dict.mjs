// The page text, read from the server's own dictionary (`["key"]` tables with `zh = "…"` and `en = "…"`), shared
// by the browser tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const dict = (() => {
  const d = {};
  let key = null;
  for (const line of readFileSync(join(here, '..', 'i18n.toml'), 'utf8').split('\n')) {
    const k = line.match(/^\["(.+)"\]\s*$/);
    const v = line.match(/^(zh|en)\s*=\s*(".*")\s*$/);
    if (k) d[(key = k[1])] = {};
    else if (v && key) d[key][v[1]] = JSON.parse(v[2]);
  }
  return d;
})();

/// The text of `key` in `lang`; fails the test when the dictionary lacks it.
export const t = (lang, key) => {
  assert.ok(dict[key]?.[lang], `i18n.toml has ${key}.${lang}`);
  return dict[key][lang];
};
