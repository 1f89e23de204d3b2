// The end-to-end walk of the web platform in headless Chromium (node:test + playwright-core): for Chinese (the
// default) and English (through the switch link), on a desktop and on a phone, the home page, a search with a
// misspelt firm name, and the public overview of that firm, with no console error, page error, CSP violation
// or failed request on the way. run.sh serves a small district and runs this file with XINYONG_URL set.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { dict, t } from './dict.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.XINYONG_URL;
assert.ok(base, 'XINYONG_URL is set (run.sh sets it)');
const shots = process.env.SCREENSHOTS || join(here, 'screenshots');
mkdirSync(shots, { recursive: true });

const LANGS = {
  zh: { html: 'zh-CN', switchTo: 'lang-en', switchText: 'English' },
  en: { html: 'en', switchTo: 'lang-zh', switchText: '中文' },
};
const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 900 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};
// The first search: a word nearly every firm name has.
const COMMON_WORD = '有限公司';


// What a field name looks like (the English record tables show them).
const FIELD_NAME = /^[a-z][a-z0-9_:]*$/;

let browser;
// The firm the walks look for: among the first search's hits, the one with the most record tables (so that
// the tables' headers are checked), and those tables' field names, as the English overview shows them.
let target;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const html = await (await fetch(`${base}/search?q=${encodeURIComponent(COMMON_WORD)}`)).text();
  const usccs = [...new Set([...html.matchAll(/href="\/firm\/([0-9A-Z]{18})"/g)].map((m) => m[1]))];
  assert.ok(usccs.length > 0, `the search for ${COMMON_WORD} finds firms`);
  let best = null;
  for (const uscc of usccs) {
    const page = await (await fetch(`${base}/firm/${uscc}`)).text();
    const tables = page.split('class="card records"').length - 1;
    if (!best || tables > best.tables) best = { uscc, tables };
  }
  assert.ok(best.tables > 0, 'some firm found has record tables');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/firm/${best.uscc}?lang=en`);
  const columns = await page.$$eval('section.records', (ss) =>
    ss.map((s) => [s.dataset.dataset, [...s.querySelectorAll('thead th:not(.status)')].map((th) => th.textContent.trim())]));
  await context.close();
  target = { uscc: best.uscc, columns: new Map(columns) };
});

after(async () => {
  await browser?.close();
});

for (const [lang, L] of Object.entries(LANGS)) {
  for (const [vp, V] of Object.entries(VIEWPORTS)) {
    describe(`${lang} · ${vp} ${V.viewport.width}×${V.viewport.height}`, () => {
      let context;
      let page;
      let problems = [];
      let firmName;
      const shot = (name) => page.screenshot({ path: join(shots, `${vp}-${lang}-${name}.png`), fullPage: true });

      before(async () => {
        context = await browser.newContext(V);
        context.setDefaultTimeout(15000);
        // Chromium logs CSP violations as console errors; the event makes sure none goes unseen.
        await context.addInitScript(() => {
          document.addEventListener('securitypolicyviolation', (e) => {
            console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'an inline source'}` +
              ` (${e.sourceFile || document.URL}:${e.lineNumber})`);
          });
        });
        page = await context.newPage();
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(`console error on ${page.url()}: ${m.text()}`);
        });
        page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
        page.on('requestfailed', (r) => {
          // Chromium fetches the favicon on its own and cancels that fetch (net::ERR_ABORTED) when the page moves
          // on or is captured first: a cancellation by the browser, not a failure of the server (whose errors
          // show as HTTP statuses below). Seen once in CI at 3c57ea3, on the home page.
          const text = r.failure()?.errorText;
          if (text === 'net::ERR_ABORTED' && new URL(r.url()).pathname === '/static/favicon.svg') return;
          problems.push(`request failed: ${r.url()} (${text})`);
        });
        page.on('response', (r) => {
          if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
        });
      });

      after(async () => {
        await context?.close();
      });

      // Every test ends here: nothing went wrong in the browser, and the page needs no sideways scrolling. (The
      // device's width, not innerWidth: a phone zooms out to show content wider than the screen, and innerWidth
      // grows with it.)
      async function pageIsClean() {
        const seen = problems;
        problems = [];
        assert.deepEqual(seen, [], 'no console error, page error, CSP violation or failed request');
        const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
        const width = V.viewport.width;
        assert.ok(scroll <= width, `the page fits the screen's width (${scroll}px wide on ${width}px)`);
      }

      async function assertLanguage(expected) {
        assert.equal(await page.getAttribute('html', 'lang'), LANGS[expected].html, `<html lang> of ${page.url()}`);
        const other = page.locator(`#${LANGS[expected].switchTo}`);
        assert.equal((await other.textContent()).trim(), LANGS[expected].switchText, 'the switch offers the other language');
      }

      async function langCookie() {
        return (await context.cookies(base)).find((c) => c.name === 'lang')?.value;
      }

      async function submitSearch(input, query) {
        await input.fill(query);
        await input.press('Enter');
        await page.waitForURL((u) => u.pathname === '/search' && u.searchParams.get('q') === query);
      }

      if (lang === 'zh') {
        it('is in Chinese by default, with a switch to English', async () => {
          await page.goto(`${base}/`);
          await assertLanguage('zh');
          assert.equal(await langCookie(), undefined, 'no language cookie before a choice');
          await pageIsClean();
        });
      } else {
        it('switches to English with the top bar link, and the cookie remembers it', async () => {
          await page.goto(`${base}/`);
          await assertLanguage('zh');
          await page.click('#lang-en');
          await page.waitForURL((u) => u.searchParams.get('lang') === 'en');
          await assertLanguage('en');
          assert.equal(await langCookie(), 'en', 'the choice is kept in the lang cookie');
          await page.goto(`${base}/search?q=${encodeURIComponent(COMMON_WORD)}`);
          await assertLanguage('en');
          await pageIsClean();
        });
      }

      it('home page: language, title and the search box', async () => {
        await page.goto(`${base}/`);
        await shot('home');
        await assertLanguage(lang);
        assert.equal((await page.textContent('main h1')).trim(), t(lang, 'home.title'));
        const box = page.locator('.big-search input[name=q]');
        assert.ok(await box.isVisible(), 'the search box is visible');
        assert.equal(await box.getAttribute('placeholder'), t(lang, 'search.placeholder'));
        const b = await box.boundingBox();
        assert.ok(b.x >= 0 && b.x + b.width <= V.viewport.width && b.width >= 150, `the search box is usable (${JSON.stringify(b)})`);
        assert.ok(await page.locator('header.top form.search input[name=q]').isVisible(), 'the top bar has a search box');
        const firms = Number(await page.textContent('#firm-count'));
        assert.ok(firms > 100, `the home page counts the register (${firms})`);
        await pageIsClean();
      });

      it('finds a firm under a misspelt name and follows its link', async () => {
        await page.goto(`${base}/`);
        await submitSearch(page.locator('.big-search input[name=q]'), COMMON_WORD);
        await assertLanguage(lang);
        const link = page.locator(`#hits a.firm-link[href="/firm/${target.uscc}"]`);
        assert.equal(await link.count(), 1, `the search for ${COMMON_WORD} finds ${target.uscc}`);
        firmName = (await link.textContent()).trim();
        const chars = [...firmName];
        assert.ok(chars.length >= 4, `a firm name to misspell (${firmName})`);
        const mid = Math.floor(chars.length / 2);
        chars[mid] = chars[mid] === '龘' ? '鑫' : '龘';
        const misspelt = chars.join('');
        // The second search goes through the top bar's box, on the results page.
        await submitSearch(page.locator('header.top form.search input[name=q]'), misspelt);
        await shot('search');
        await assertLanguage(lang);
        assert.equal(await page.inputValue('header.top form.search input[name=q]'), misspelt, 'the box keeps the query');
        assert.equal(await page.locator('#no-hits').count(), 0, `“${misspelt}” finds something`);
        const hit = page.locator(`#hits a.firm-link[href="/firm/${target.uscc}"]`);
        assert.equal(await hit.count(), 1, `“${misspelt}” still finds ${firmName}`);
        assert.equal((await hit.textContent()).trim(), firmName);
        await pageIsClean();
        await hit.click();
        await page.waitForURL(`${base}/firm/${target.uscc}`);
        await pageIsClean();
      });

      it('shows the public overview: name, registration facts, the notice, no score', async () => {
        assert.equal(new URL(page.url()).pathname, `/firm/${target.uscc}`, 'the walk is on the overview');
        await shot('overview');
        await assertLanguage(lang);
        assert.equal((await page.textContent('h1#firm-name')).trim(), firmName);
        assert.ok((await page.title()).startsWith(firmName), 'the title names the firm');
        assert.ok((await page.textContent('p.uscc')).includes(target.uscc), 'the USCC is shown');

        // Registration facts, each labelled in the page's language.
        const labels = Object.keys(dict).filter((k) => k.startsWith('reg.')).map((k) => t(lang, k));
        const facts = await page.$$eval('dl.facts', (dls) =>
          dls.flatMap((dl) => [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent.trim(), dt.nextElementSibling?.textContent.trim()])));
        assert.ok(facts.length >= 5, `registration facts are shown (${facts.length})`);
        for (const [label] of facts) assert.ok(labels.includes(label), `the fact label “${label}” is page text in ${lang}`);
        const byLabel = new Map(facts);
        assert.equal(byLabel.get(t(lang, 'reg.name')), firmName, 'the registered name');
        assert.ok(byLabel.get(t(lang, 'reg.status')), 'the registration status');

        // The public view: the notice, and no assessment, warnings or charts.
        assert.equal((await page.textContent('#restricted')).trim(), t(lang, 'firm.restricted'));
        assert.ok(await page.locator('#restricted').isVisible());
        for (const hidden of ['#score', '#grade', '#warnings', '#radar', '.chart']) {
          assert.equal(await page.locator(hidden).count(), 0, `the public view has no ${hidden}`);
        }

        // Record tables: the sources' headers in Chinese, the field names in English.
        const tables = await page.$$eval('section.records', (ss) =>
          ss.map((s) => [s.dataset.dataset, [...s.querySelectorAll('thead th:not(.status)')].map((th) => th.textContent.trim())]));
        assert.deepEqual(tables.map(([d]) => d), [...target.columns.keys()], 'the same record tables in both languages');
        for (const [dataset, headers] of tables) {
          const fields = target.columns.get(dataset);
          assert.equal(headers.length, fields.length, `${dataset}: one header per field`);
          headers.forEach((h, i) => {
            if (lang === 'en') assert.match(h, FIELD_NAME, `${dataset}: the English header “${h}” is a field name`);
            else assert.notEqual(h, fields[i], `${dataset}: the Chinese table shows the source's header, not the field name “${fields[i]}”`);
          });
        }
        await pageIsClean();
      });

      it('switches language on the overview and stays on the firm', async () => {
        const other = lang === 'zh' ? 'en' : 'zh';
        assert.equal(new URL(page.url()).pathname, `/firm/${target.uscc}`, 'the walk is on the overview');
        await page.click(`#${L.switchTo}`);
        await page.waitForURL((u) => u.pathname === `/firm/${target.uscc}` && u.searchParams.get('lang') === other);
        await assertLanguage(other);
        assert.equal((await page.textContent('h1#firm-name')).trim(), firmName);
        assert.equal(await langCookie(), other);
        await pageIsClean();
      });

      it('dashboard: the index chart for every dimension and the colour tables', async () => {
        await page.goto(`${base}/?lang=${lang}`);
        await page.click('#nav-dashboard');
        await page.waitForURL((u) => u.pathname === '/dashboard');
        await assertLanguage(lang);
        assert.equal((await page.textContent('main h1')).trim(), t(lang, 'dash.title'));
        const tabs = await page.locator('#dims a').count();
        assert.equal(tabs, 6, 'six index dimensions');
        for (const dim of ['district', 'industry', 'township', 'cluster', 'size', 'force']) {
          await page.goto(`${base}/dashboard?dim=${dim}`);
          await page.waitForSelector('#index-chart canvas');
          const rows = await page.locator('#index-table tbody tr').count();
          assert.ok(rows >= 1, `${dim}: the index table has rows`);
          if (dim === 'industry') await shot('dashboard');
        }
        for (const table of ['#colours-industry', '#colours-township']) {
          const n = await page.locator(`${table} tbody tr`).count();
          assert.ok(n >= 1, `${table} has rows`);
        }
        await pageIsClean();
      });
    });
  }
}
