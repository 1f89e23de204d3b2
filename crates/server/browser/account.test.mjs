// Accounts in headless Chromium: every demo role logs in (with its TOTP code where the role needs one) and sees
// its account page; a wrong code is refused; the enterprise reads its own record and why it is coloured; a bank
// cannot open the firm's restricted record until the firm authorises it from its account page, and loses it on
// the very next request after the firm revokes; the firm then reads who viewed it — in Chinese on a desktop and
// in English on a phone. run.sh creates the accounts (`xinyong accounts demo --json`) and sets ACCOUNTS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { t } from './dict.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.XINYONG_URL;
assert.ok(base, 'XINYONG_URL is set (run.sh sets it)');
assert.ok(process.env.ACCOUNTS, 'ACCOUNTS names the demo accounts file (run.sh sets it)');
const accounts = Object.fromEntries(JSON.parse(readFileSync(process.env.ACCOUNTS, 'utf8')).map((a) => [a.role, a]));
const shots = process.env.SCREENSHOTS || join(here, 'screenshots');
mkdirSync(shots, { recursive: true });


// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), as an authenticator app computes it from the base32 secret.
function totp(secret, at = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// A code is accepted once (the server refuses a replayed one): a second login of the same account within
// the same 30-second window waits for the next code.
const usedCodes = new Map();
async function freshCode(secret) {
  let code = totp(secret);
  while (usedCodes.get(secret) === code) {
    await new Promise((r) => setTimeout(r, 1000));
    code = totp(secret);
  }
  usedCodes.set(secret, code);
  return code;
}

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
});

/// A browser context per person, collecting problems (console errors, failed requests, HTTP errors but those
/// expected).
async function person(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const p = { context, page, problems: [], expect4xx: new Set() };
  page.on('console', (m) => {
    const expected = [...p.expect4xx].some((code) => m.text().includes(`status of ${code}`));
    if (m.type() === 'error' && !expected) p.problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => p.problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !p.expect4xx.has(r.status())) p.problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  p.clean = () => {
    const seen = p.problems;
    p.problems = [];
    assert.deepEqual(seen, [], 'no console error, page error or unexpected HTTP error');
  };
  return p;
}

async function login(p, role, lang = 'zh') {
  const a = accounts[role];
  await p.page.goto(`${base}/login?lang=${lang}`);
  await p.page.fill('input[name=user]', a.user);
  await p.page.fill('input[name=password]', a.password);
  if (a.totp_secret) await p.page.fill('input[name=code]', await freshCode(a.totp_secret));
  await p.page.click('#login-submit');
  await p.page.waitForURL((u) => u.pathname === '/me');
  assert.equal((await p.page.textContent('#me-role')).trim(), t(lang, `role.${role}`));
  const cookie = (await p.context.cookies(base)).find((c) => c.name === 'xy_session');
  assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict', 'the session cookie is HttpOnly, Secure, SameSite=Strict');
}

/// Clicks a form's button on /me and waits for the account page the post redirects to.
async function submitAndReload(page, selector) {
  await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/me' && r.request().method() === 'GET'),
    page.click(selector),
  ]);
  await page.waitForLoadState('load');
}

/// Each person's pages in both languages, on a desktop and a phone: the page's language, and nothing wider than
/// the screen.
async function walkEverywhere(walks) {
    for (const [who, paths] of walks) {
      for (const [w, h] of [[1280, 900], [390, 844]]) {
        await who.page.setViewportSize({ width: w, height: h });
        for (const lang of ['zh', 'en']) {
          for (const path of paths) {
            await who.page.goto(`${base}${path}?lang=${lang}`);
            assert.equal(await who.page.getAttribute('html', 'lang'), lang === 'zh' ? 'zh-CN' : 'en', path);
            const scroll = await who.page.evaluate(() => document.documentElement.scrollWidth);
            assert.ok(scroll <= w, `${path} fits ${w}px in ${lang} (${scroll}px)`);
          }
        }
      }
      await who.page.setViewportSize({ width: 1280, height: 900 });
      who.clean();
    }
}

describe('every role logs in', () => {
  for (const role of ['department', 'regulator', 'admin']) {
    it(`${role}: a wrong code is refused, the right one lets in, logout ends the session`, async () => {
      const p = await person();
      const a = accounts[role];
      assert.ok(a.totp_secret, `${role} has a second factor`);
      p.expect4xx.add(401);
      await p.page.goto(`${base}/login`);
      await p.page.fill('input[name=user]', a.user);
      await p.page.fill('input[name=password]', a.password);
      const right = totp(a.totp_secret);
      await p.page.fill('input[name=code]', right === '123456' ? '654321' : '123456');
      await p.page.click('#login-submit');
      await p.page.waitForSelector('#login-error');
      assert.equal((await p.page.textContent('#login-error')).trim(), t('zh', 'login.failed'));
      p.expect4xx.delete(401);
      await login(p, role);
      await p.page.screenshot({ path: join(shots, `desktop-zh-me-${role}.png`), fullPage: true });
      if (role === 'department') {
        // Upload a delivery (a real file of the district, with a broken line added) and read its receipt.
        assert.ok(process.env.DISTRICT, 'DISTRICT names the generated district (run.sh sets it)');
        const dir = join(process.env.DISTRICT, 'sources', a.org);
        const name = readdirSync(dir).filter((f) => f.startsWith(`${a.org}.penalties__`)).sort()[0];
        assert.ok(name, 'a penalties delivery to re-send');
        const bytes = Buffer.concat([readFileSync(join(dir, name)), Buffer.from('not-a-code,x\n')]);
        await p.page.click('#nav-data');
        await p.page.waitForURL((u) => u.pathname === '/data');
        await p.page.selectOption('#upload-dataset', `${a.org}.penalties`);
        await p.page.setInputFiles('#upload-file', { name: 'penalties.csv', mimeType: 'text/csv', buffer: bytes });
        await Promise.all([p.page.waitForURL((u) => u.pathname.startsWith('/data/batch/')), p.page.click('#upload-submit')]);
        assert.ok(Number(await p.page.textContent('#quarantined')) >= 1, 'the broken line is quarantined');
        assert.ok((await p.page.textContent('#quarantine')).includes('not-a-code'), 'with its raw text');
        await p.page.screenshot({ path: join(shots, 'desktop-zh-data-receipt.png'), fullPage: true });
      }
      if (role === 'regulator') {
        // The regulator reads every firm: find one in a guarantee circle and see its group drawn.
        const html = await (await fetch(`${base}/search?q=${encodeURIComponent('有限公司')}`)).text();
        const usccs = [...new Set([...html.matchAll(/href="\/firm\/([0-9A-Z]{18})"/g)].map((m) => m[1]))];
        let drawn = null;
        for (const u of usccs) {
          await p.page.goto(`${base}/firm/${u}`);
          if (await p.page.locator('#circle-graph').count()) {
            drawn = u;
            break;
          }
        }
        assert.ok(drawn, `one of ${usccs.length} firms is in a guarantee group`);
        assert.ok((await p.page.locator('#circle-graph canvas').count()) > 0, 'the group is drawn');
        assert.ok((await p.page.locator('#circle tbody tr').count()) > 0, 'its members with their PDs');
        await p.page.locator('#circle').screenshot({ path: join(shots, 'desktop-zh-firm-circle.png') });
        // Thematic analysis: each group of a theme with its risk and resource use; the funds' flows.
        await p.page.click('#nav-themes');
        await p.page.waitForURL((u) => u.pathname === '/themes');
        assert.ok((await p.page.locator('#theme-table tbody tr').count()) > 0, 'the clusters are listed');
        await p.page.screenshot({ path: join(shots, 'desktop-zh-themes.png'), fullPage: true });
        await p.page.goto(`${base}/themes?tab=funds`);
        assert.ok((await p.page.locator('#funds-table tbody tr').count()) > 0, 'the subsidies by year and programme');
        // Support policies: how many firms each fits.
        await p.page.click('#nav-support');
        assert.ok((await p.page.locator('.count').count()) > 0, 'each policy counted');
      }
      // Every page of the role, in both languages, on a desktop and on a phone: no error, nothing wider than
      // the screen.
      const pages = {
        department: ['/me', '/data', '/dashboard', '/products', '/support'],
        regulator: ['/me', '/inbox', '/inbox/digest', '/screening', '/dashboard?dim=cluster', '/products', '/support',
          ...['clusters', 'towns', 'sizes', 'resources', 'funds'].map((tab) => `/themes?tab=${tab}`)],
        admin: ['/me', '/admin', '/dashboard', '/support'],
      }[role];
      for (const [w, h] of [[1280, 900], [390, 844]]) {
        await p.page.setViewportSize({ width: w, height: h });
        for (const lang of ['zh', 'en']) {
          for (const path of pages) {
            await p.page.goto(`${base}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
            assert.equal(await p.page.getAttribute('html', 'lang'), lang === 'zh' ? 'zh-CN' : 'en', path);
            const scroll = await p.page.evaluate(() => document.documentElement.scrollWidth);
            assert.ok(scroll <= w, `${path} fits ${w}px in ${lang} (${scroll}px)`);
          }
        }
      }
      await p.page.setViewportSize({ width: 1280, height: 900 });
      await p.page.goto(`${base}/me?lang=zh`);
      p.clean();
      await p.page.click('#logout');
      await p.page.waitForURL((u) => u.pathname === '/');
      assert.equal(await p.page.locator('#nav-login').count(), 1, 'logged out');
      await p.page.goto(`${base}/me`);
      assert.equal(new URL(p.page.url()).pathname, '/login', 'the account page asks to log in again');
      p.clean();
      await p.context.close();
    });
  }
});

describe('a firm authorises a bank, then revokes', () => {
  let firm;
  let bank;
  const firmUrl = () => `${base}/firm/${accounts.enterprise.org}`;

  before(async () => {
    firm = await person();
    bank = await person();
    await login(firm, 'enterprise');
    await login(bank, 'bank');
  });
  after(async () => {
    await firm?.context.close();
    await bank?.context.close();
  });

  it('the enterprise reads its own record: score, reasons and why it is coloured', async () => {
    await firm.page.click('#me-firm');
    await firm.page.waitForURL((u) => u.pathname.startsWith('/firm/'));
    assert.ok(await firm.page.locator('#score').isVisible(), 'its score');
    assert.ok((await firm.page.locator('ul.reasons li').count()) > 0, 'the reasons');
    const rows = await firm.page.locator('#warnings tbody tr').count();
    assert.ok(rows > 0, 'the warnings that colour it');
    assert.match(await firm.page.textContent('#basis'), /own/);
    await firm.page.screenshot({ path: join(shots, 'desktop-zh-firm-own.png'), fullPage: true });
    firm.clean();
  });

  it('the enterprise reads which support policies it qualifies for, and what it lacks for the others', async () => {
    await firm.page.click('#nav-support');
    await firm.page.waitForURL((u) => u.pathname === '/support');
    const policies = await firm.page.locator('section.policy').count();
    assert.ok(policies >= 4, 'the policies');
    const judged = (await firm.page.locator('.tag.ok').count()) + (await firm.page.locator('.tag.no').count());
    assert.equal(judged, policies, 'every policy judged for the firm');
    // A policy it does not meet names the criterion it fails, with the firm's own value.
    if (await firm.page.locator('.tag.no').count()) {
      assert.ok((await firm.page.locator('tr.unmet').count()) > 0, 'the unmet criteria are shown');
    }
    await firm.page.screenshot({ path: join(shots, 'desktop-zh-support-own.png'), fullPage: true });
    firm.clean();
  });

  it('the bank cannot open the restricted record before the firm authorises it', async () => {
    await bank.page.goto(firmUrl());
    assert.equal(await bank.page.locator('#score').count(), 0, 'no score');
    assert.ok(await bank.page.locator('#restricted').isVisible(), 'the notice says why');
    bank.clean();
  });

  it('the firm authorises the bank on its account page; the bank then reads the record', async () => {
    await firm.page.goto(`${base}/me`);
    await firm.page.selectOption('#grant-bank', accounts.bank.org);
    await submitAndReload(firm.page, '#grant-submit');
    const row = firm.page.locator(`#authorisations tr[data-bank="${accounts.bank.org}"][data-live="true"]`);
    assert.equal(await row.count(), 1, 'a live authorisation of the bank');
    await bank.page.reload();
    assert.ok(await bank.page.locator('#score').isVisible(), 'the bank sees the score now');
    assert.match(await bank.page.textContent('#basis'), /authorisation:/);
    await bank.page.screenshot({ path: join(shots, 'desktop-zh-firm-bank-authorised.png'), fullPage: true });
    firm.clean();
    bank.clean();
  });

  it('the bank follows the firm and its guarantee group; the inbox lists the firm’s alerts', async () => {
    await bank.page.goto(firmUrl());
    await Promise.all([bank.page.waitForURL((u) => u.pathname.startsWith('/firm/')), bank.page.click('#subscribe-firm')]);
    await bank.page.waitForSelector('#subscribed');
    if (await bank.page.locator('#circle-graph').count()) {
      assert.ok(await bank.page.locator('#circle-graph canvas').count() > 0, 'the group is drawn');
      await bank.page.click('#subscribe-group');
      await bank.page.waitForLoadState('load');
      assert.equal(await bank.page.locator('#subscribe-group').count(), 0, 'the group is followed');
    }
    await bank.page.click('#nav-inbox');
    await bank.page.waitForURL((u) => u.pathname === '/inbox');
    const row = bank.page.locator(`#subscriptions tr[data-kind="firm"][data-target="${accounts.enterprise.org}"]`);
    assert.equal(await row.count(), 1, 'the subscription is listed');
    assert.equal(await bank.page.locator('#hidden-firms').count(), 0, 'nothing hidden while authorised');
    const alerts = await bank.page.locator('#alerts tr.alert').count();
    const none = await bank.page.locator('#no-alerts').count();
    assert.ok(alerts > 0 || none === 1, 'alerts or a clear "none"');
    await bank.page.screenshot({ path: join(shots, 'desktop-zh-inbox.png'), fullPage: true });
    bank.clean();
  });

  it('while the feed simulator pushes, the bank officer’s inbox shows new alerts as they happen', async () => {
    // The officer follows every township (its whole market) from the inbox page.
    await bank.page.goto(`${base}/inbox`);
    const csrf = await bank.page.getAttribute('#sub-township input[name=csrf]', 'value');
    const towns = await bank.page.$$eval('#sub-township select[name=target] option', (os) => os.map((o) => o.value));
    for (const tw of towns) {
      await bank.page.evaluate(async ([c, target]) => {
        await fetch('/subscriptions', {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `csrf=${encodeURIComponent(c)}&kind=township&target=${encodeURIComponent(target)}`,
        });
      }, [csrf, tw]);
    }
    await bank.page.goto(`${base}/inbox`);
    await bank.page.waitForSelector('#live-status:not([hidden])');
    assert.equal(await bank.page.locator('tr.alert.new').count(), 0);
    // The district's November deliveries, pushed by the front-end machines (simulated), signed.
    const feed = spawn(process.env.XINYONG_BIN, ['feed', 'simulate', '--db', process.env.XINYONG_DB,
      '--district', process.env.DISTRICT, '--url', base, '--from', '2025-11-01', '--rate', '2000', '--limit', '25']);
    let out = '';
    feed.stdout.on('data', (d) => { out += d; });
    feed.stderr.on('data', (d) => { out += d; });
    const done = new Promise((r) => feed.on('exit', r));
    await bank.page.waitForSelector('tr.alert.new', { timeout: 90000 });
    assert.equal(await done, 0, out);
    assert.match(out, /feed done: /);
    const live = await bank.page.locator('tr.alert.new').count();
    assert.ok(live > 0, 'new alerts appeared without a reload');
    // Each is a firm the bank may read: its link opens the full record.
    const href = await bank.page.getAttribute('tr.alert.new a.firm', 'href');
    await bank.page.screenshot({ path: join(shots, 'desktop-zh-inbox-live.png'), fullPage: true });
    await bank.page.goto(`${base}${href}`);
    assert.ok(await bank.page.locator('#score').isVisible(), 'the alert’s firm is one the bank may read');
    bank.clean();
  });

  it('the firm revokes; the bank loses the record on its next request (English, phone)', async () => {
    await firm.page.goto(`${base}/me`);
    await submitAndReload(firm.page, `#authorisations tr[data-bank="${accounts.bank.org}"] button.revoke`);
    assert.equal(await firm.page.locator(`#authorisations tr[data-live="true"]`).count(), 0, 'no live authorisation');
    await bank.page.setViewportSize({ width: 390, height: 844 });
    await bank.page.goto(`${firmUrl()}?lang=en`);
    assert.equal(await bank.page.locator('#score').count(), 0, 'no score after the revocation');
    assert.ok((await bank.page.textContent('#restricted')).includes(t('en', 'firm.restricted')));
    const scroll = await bank.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scroll <= 390, `the page fits a phone (${scroll}px)`);
    await bank.page.screenshot({ path: join(shots, 'phone-en-firm-bank-revoked.png'), fullPage: true });
    await bank.page.goto(`${base}/inbox?lang=en`);
    assert.equal(await bank.page.locator('#hidden-firms').count(), 1, 'the inbox no longer shows the firm’s alerts');
    // (It follows every township since the live test: its borrowers' alerts stay, the firm's are gone.)
    assert.equal(await bank.page.locator(`#alerts tr.alert a[href="/firm/${accounts.enterprise.org}"]`).count(), 0);
    bank.clean();
  });

  it('the firm reads who viewed its record, and under which authorisation', async () => {
    await firm.page.goto(`${base}/me?lang=en`);
    const viewers = await firm.page.textContent('#viewers');
    assert.ok(viewers.includes(`(${accounts.bank.user})`), 'the bank’s read is listed');
    assert.match(viewers, /authorisation:/);
    await firm.page.screenshot({ path: join(shots, 'desktop-en-me-enterprise.png'), fullPage: true });
    firm.clean();
  });
  it('the bank publishes a loan product and screens the eligible firms', async () => {
    await bank.page.setViewportSize({ width: 1280, height: 900 });
    await bank.page.goto(`${base}/products`);
    await bank.page.fill('#product-name', '科技成长贷');
    await bank.page.selectOption('#product-grade', 'C');
    await Promise.all([bank.page.waitForURL((u) => /^\/products\/[0-9a-f]{12}$/.test(u.pathname)), bank.page.click('#publish-submit')]);
    // Only the bank's borrowers are named (the firm revoked its authorisation); the others are counted.
    assert.equal(await bank.page.locator(`tr.eligible[data-uscc="${accounts.enterprise.org}"]`).count(), 0,
      'the firm that revoked is not named');
    assert.equal(await bank.page.locator('#eligible-others').count(), 1, 'the others are counted');
    await bank.page.screenshot({ path: join(shots, 'desktop-zh-screening.png'), fullPage: true });
    bank.clean();
  });

  it('the enterprise applies, authorising the bank in the same step; the bank approves', async () => {
    await firm.page.goto(`${base}/products`);
    const row = firm.page.locator(`div.product[data-bank="${accounts.bank.org}"]`).first();
    await Promise.all([firm.page.waitForURL((u) => u.pathname === '/products'), row.locator('button.apply-submit').click()]);
    await firm.page.waitForSelector('tr.application[data-status="applied"]');
    await bank.page.goto(firmUrl());
    assert.ok(await bank.page.locator('#score').isVisible(), 'the application authorised the bank');
    await bank.page.goto(`${base}/products`);
    const app = bank.page.locator('tr.application[data-status="applied"]').first();
    await app.locator('input[name=note]').fill('同意');
    await Promise.all([bank.page.waitForURL((u) => u.pathname === '/products'), app.locator('button.approve').click()]);
    await bank.page.waitForSelector('tr.application[data-status="approved"]');
    await firm.page.reload();
    assert.equal(await firm.page.locator('tr.application[data-status="approved"]').count(), 1, 'the firm sees the approval');
    await firm.page.screenshot({ path: join(shots, 'desktop-zh-products-enterprise.png'), fullPage: true });
    firm.clean();
    bank.clean();
  });
  it('the bank screens a customer list and downloads an Excel workbook', async () => {
    await bank.page.click('#nav-screening');
    await bank.page.waitForURL((u) => u.pathname === '/screening');
    const csv = `企业名称,统一社会信用代码\n,${accounts.enterprise.org}\n=1+1,\n`;
    await bank.page.setInputFiles('#bulk-file', { name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    const [download] = await Promise.all([bank.page.waitForEvent('download'), bank.page.click('#bulk-submit')]);
    assert.equal(download.suggestedFilename(), 'screening.xlsx');
    const path = await download.path();
    const head = readFileSync(path).subarray(0, 2).toString();
    assert.equal(head, 'PK', 'an .xlsx (zip) file');
    bank.clean();
  });
  it('the enterprise’s and the bank’s pages in both languages, on a desktop and a phone', async () => {
    const walks = [
      [firm, ['/me', '/products', '/support', `/firm/${accounts.enterprise.org}`]],
      [bank, ['/me', '/inbox', '/inbox/digest', '/products', '/screening', '/support', `/firm/${accounts.enterprise.org}`]],
    ];
    await walkEverywhere(walks);
  });
});

describe('a firm objects to one of its records; the department answers in writing', () => {
  let firm;
  let dept;
  let caseUrl;

  before(async () => {
    firm = await person();
    dept = await person();
    await login(firm, 'enterprise');
    await login(dept, 'department');
  });
  after(async () => {
    await firm?.context.close();
    await dept?.context.close();
  });

  it('the firm reads what would improve its score: each warning, what clears it, the records behind it', async () => {
    await firm.page.click('#nav-improve');
    await firm.page.waitForURL((u) => u.pathname === '/improve');
    assert.ok(await firm.page.locator('#improve-warnings').isVisible());
    assert.ok(await firm.page.locator('#improve-reasons').isVisible());
    assert.ok((await firm.page.locator('.improve-warning').count()) > 0, 'its warnings, each with its remedy');
    await firm.page.screenshot({ path: join(shots, 'desktop-zh-improve.png'), fullPage: true });
    firm.clean();
  });

  it('the firm objects to its registration record; the record is marked disputed for everyone at once', async () => {
    await firm.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    await firm.page.click('section.card a.object');
    await firm.page.waitForURL((u) => u.pathname === '/objections/new');
    assert.ok(await firm.page.locator('#due-if-today').isVisible(), 'the deadline it would have');
    assert.ok(await firm.page.locator('#grade-without').isVisible(), 'the score without the record, beside the score with it');
    await firm.page.fill('#obj-text', '注册资本登记有误，应为实缴后的金额。');
    await Promise.all([firm.page.waitForURL((u) => /^\/objections\/YY-/.test(u.pathname)), firm.page.click('#obj-submit')]);
    caseUrl = firm.page.url();
    assert.equal((await firm.page.textContent('#obj-stage')).trim(), t('zh', 'stage.open'));
    // Anyone's view of the firm shows the mark now.
    const pub = await person();
    const t0 = Date.now();
    await pub.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    assert.ok(await pub.page.locator('#registration-disputed').isVisible(), 'the public page marks it disputed');
    assert.ok(Date.now() - t0 < 5000);
    pub.clean();
    await pub.context.close();
    await firm.page.screenshot({ path: join(shots, 'desktop-zh-objection-filed.png'), fullPage: true });
    firm.clean();
  });

  it('the department finds it on its list with its deadline and answers it in writing', async () => {
    await dept.page.click('#nav-objections');
    await dept.page.waitForURL((u) => u.pathname === '/objections');
    const id = new URL(caseUrl).pathname.split('/').pop();
    const row = dept.page.locator(`tr.obj[data-id="${id}"]`);
    assert.equal(await row.count(), 1, 'the case is on the department’s list');
    await row.locator('a').click();
    await dept.page.waitForURL((u) => u.pathname === `/objections/${id}`);
    await dept.page.check('#outcome-upheld');
    await dept.page.fill('#answer-text', '经核实，登记信息与原始档案一致，维持原记录。');
    await Promise.all([dept.page.waitForURL((u) => u.pathname === `/objections/${id}`), dept.page.click('#answer-submit')]);
    assert.equal((await dept.page.textContent('#obj-outcome')).trim(), t('zh', 'outcome.upheld'));
    await dept.page.screenshot({ path: join(shots, 'desktop-zh-objection-answered.png'), fullPage: true });
    dept.clean();
  });

  it('the firm reads the answer; the public turnaround figures count the case', async () => {
    await firm.page.goto(caseUrl);
    assert.equal((await firm.page.textContent('#obj-outcome')).trim(), t('zh', 'outcome.upheld'));
    assert.match(await firm.page.textContent('#obj-answer'), /维持原记录/);
    assert.equal((await firm.page.textContent('#obj-stage')).trim(), t('zh', 'stage.answered'));
    await firm.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    assert.equal(await firm.page.locator('#registration-disputed').count(), 0, 'no longer disputed once answered');
    await firm.page.click('#footer-turnaround');
    await firm.page.waitForURL((u) => u.pathname === '/objections/turnaround');
    assert.equal(await firm.page.locator('tr.turn[data-source="amr"]').count(), 1, 'the department’s figures');
    firm.clean();
  });

  it('the rights pages in both languages, on a desktop and a phone', async () => {
    const walks = [
      [firm, ['/objections', '/improve', '/objections/turnaround', new URL(caseUrl).pathname]],
      [dept, ['/objections', new URL(caseUrl).pathname]],
    ];
    await walkEverywhere(walks);
  });
});

describe('a person sees what the platform holds about them', () => {
  it('the demo firm’s legal representative reads their records, who read the firm, and may object', async () => {
    const p = await person();
    await login(p, 'person');
    await p.page.click('#nav-person');
    await p.page.waitForURL((u) => u.pathname === '/person');
    assert.ok((await p.page.locator('.person-record').count()) > 0, 'the records that name them');
    assert.ok((await p.page.locator('.person-record a.object, .person-record .tag.disputed').count()) > 0, 'each with its objection path');
    assert.ok(await p.page.locator('#person-reads').isVisible(), 'who read them');
    for (const lang of ['zh', 'en']) {
      for (const [w, h] of [[1280, 900], [390, 844]]) {
        await p.page.setViewportSize({ width: w, height: h });
        await p.page.goto(`${base}/person?lang=${lang}`);
        const scroll = await p.page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(scroll <= w, `/person fits ${w}px in ${lang} (${scroll}px)`);
      }
    }
    await p.page.screenshot({ path: join(shots, 'phone-en-person.png'), fullPage: true });
    p.clean();
    await p.context.close();
  });
});

describe('a firm applies to repair a penalty; the department grants it', () => {
  it('the penalty leaves the public page on the day of the decision', async () => {
    const firm = await person();
    const dept = await person();
    await login(firm, 'enterprise');
    await login(dept, 'department');
    // Today in Asia/Shanghai, as the server counts it.
    const today = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
    await firm.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    const links = await firm.page.$$eval('section.records[data-dataset="amr.penalties"] a.repair', (as) =>
      as.map((a) => ({ href: a.getAttribute('href'), from: a.dataset.from, until: a.dataset.until })));
    const link = links.find((l) => l.from <= today && l.until >= today);
    assert.ok(link, 'the demo firm has a market-regulation penalty it may apply to repair today');
    const fact = new URL(link.href, base).searchParams.get('fact');
    await firm.page.click(`a.repair[href="${link.href}"]`);
    await firm.page.waitForURL((u) => u.pathname === '/repairs/new');
    await firm.page.fill('#repair-text', '罚款已足额缴纳，违法行为已整改完毕，并承诺今后依法经营。');
    await Promise.all([firm.page.waitForURL((u) => /^\/repairs\/XF-/.test(u.pathname)), firm.page.click('#repair-submit')]);
    const caseUrl = firm.page.url();
    assert.equal((await firm.page.textContent('#repair-state')).trim(), t('zh', 'repair.pending'));
    firm.clean();

    await dept.page.goto(`${base}/objections`);
    const id = new URL(caseUrl).pathname.split('/').pop();
    await dept.page.locator(`tr.repair[data-id="${id}"] a`).click();
    await dept.page.waitForURL((u) => u.pathname === `/repairs/${id}`);
    await dept.page.check('#decision-grant');
    await dept.page.fill('#decide-answer', '经核实已整改到位，准予信用修复。');
    await Promise.all([dept.page.waitForURL((u) => u.pathname === `/repairs/${id}`), dept.page.click('#decide-submit')]);
    assert.equal((await dept.page.textContent('#repair-state')).trim(), t('zh', 'repair.granted'));
    await dept.page.screenshot({ path: join(shots, 'desktop-zh-repair-granted.png'), fullPage: true });
    dept.clean();

    const pub = await person();
    await pub.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    assert.equal(await pub.page.locator(`tr[data-fact="${fact}"]`).count(), 0, 'no longer on the public page');
    pub.clean();
    await firm.page.goto(`${base}/firm/${accounts.enterprise.org}`);
    assert.equal(await firm.page.locator(`tr[data-fact="${fact}"]`).count(), 1, 'still in the firm’s own (credit) view');
    firm.clean();
    for (const p of [firm, dept, pub]) await p.context.close();
  });
});
