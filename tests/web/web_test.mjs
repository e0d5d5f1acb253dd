// Drives the advisor's web page in headless Chromium (DevTools protocol via
// playwright-core) and asserts on the DOM. Started by test_web.c, which runs
// a real kopt-advisor over seeded ClickHouse data. Environment:
//   KOPT_WEB_BASE      http://127.0.0.1:PORT of the gateway
//   KOPT_WEB_KEY       an API key it accepts
//   KOPT_WEB_MODULES   node_modules holding playwright-core
//   KOPT_WEB_SHOTS     where the screenshots go
//   KOPT_WEB_CHROMIUM  the browser (/usr/bin/chromium)
// Exit status 0 when every check passed; each check prints one line.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const env = (k) => {
  if (!process.env[k]) throw new Error(k + " is not set");
  return process.env[k];
};
const BASE = env("KOPT_WEB_BASE"), KEY = env("KOPT_WEB_KEY"), SHOTS = env("KOPT_WEB_SHOTS");
const require = createRequire(env("KOPT_WEB_MODULES") + "/");
const { chromium } = require("playwright-core");

let checks = 0;
function ok(what) {
  checks++;
  console.log("ok " + checks + " - " + what);
}

// ---- the expected values, computed here from the API's JSON --------------

async function api(path) {
  const r = await fetch(BASE + path, { headers: { authorization: "Bearer " + KEY } });
  assert.equal(r.status, 200, path);
  return r.json();
}

// Kubernetes quantities, rounded up (never below the advice).
function cpuQ(c) {
  c = Number(c || 0);
  if (c <= 0) return "0";
  const m = Math.max(1, Math.ceil(c * 1000 - 1e-6));
  return m % 1000 ? m + "m" : String(m / 1000);
}
function memQ(b) {
  b = Number(b || 0);
  if (b <= 0) return "0";
  const mi = Math.max(1, Math.ceil(b / 1048576 - 1e-9));
  return mi % 1024 ? mi + "Mi" : mi / 1024 + "Gi";
}
const yq = (q) => (/^[0-9.]+$/.test(q) ? `"${q}"` : q);
function expectedYaml(c, ind) {
  const a = c.recommended || {}, p = " ".repeat(ind);
  let s = `${p}resources:\n${p}  requests:\n${p}    cpu: ${yq(cpuQ(a.cpuRequestCores))}\n` +
    `${p}    memory: ${yq(memQ(a.memoryRequestBytes))}\n`;
  const lim = [];
  if (Number(a.cpuLimitCores || 0) > 0) lim.push(`${p}    cpu: ${yq(cpuQ(a.cpuLimitCores))}\n`);
  if (Number(a.memoryLimitBytes || 0) > 0) lim.push(`${p}    memory: ${yq(memQ(a.memoryLimitBytes))}\n`);
  if (lim.length) s += `${p}  limits:\n` + lim.join("");
  return s;
}
// A quantity or "none" back to a number, to check the sort order.
function qval(q) {
  q = q.trim();
  if (q === "none" || q === "n/a") return -1;
  let m;
  if ((m = /^([\d.]+)m$/.exec(q))) return Number(m[1]) / 1000;
  if ((m = /^([\d.]+)Mi$/.exec(q))) return Number(m[1]) * 1048576;
  if ((m = /^([\d.]+)Gi$/.exec(q))) return Number(m[1]) * 1073741824;
  if ((m = /^(-?[\d.]+)( %)?( [A-Z]{3})?$/.exec(q))) return Number(m[1]);
  throw new Error("not a quantity: " + q);
}

// ---- page helpers --------------------------------------------------------------

const errors = [];
// `expected`: the one console message a page may show (Chromium logs a
// refused fetch: docs/stack-facts.md, 'Chromium: console errors for answers
// the page expected'); anything else is an error of the page.
function watch(page, label, expected) {
  page.on("console", (m) => {
    if (expected && expected.test(m.text())) return;
    if (m.type() === "error" || m.type() === "warning") errors.push(label + ": " + m.text());
  });
  page.on("pageerror", (e) => errors.push(label + ": " + e.message));
}

async function waitReady(page, what) {
  await page.waitForSelector(`body[data-ready="${what}"]`, { timeout: 20000 });
}

const rowNames = (page) =>
  page.$$eval("#wlrows tr.workload", (trs) => trs.map((t) => t.dataset.id));
const colTexts = (page, col) =>
  page.$$eval(`#wlrows tr.workload td[data-col="${col}"]`, (tds) => tds.map((t) => t.textContent));

// Types the key with the keyboard only and submits with Enter.
async function enterKey(page) {
  await page.focus("#key");
  await page.keyboard.type(KEY);
  await page.keyboard.press("Enter");
  await waitReady(page, "list");
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env("KOPT_WEB_CHROMIUM"),
    headless: true,
  });
  try {
    await desktop(browser);
    await phone(browser);
    await wrongKey(browser);
  } finally {
    await browser.close();
  }
  assert.deepEqual(errors, [], "console errors or warnings");
  ok("no console errors or warnings on any page");
  console.log(`all ${checks} checks passed; screenshots in ${SHOTS}`);
}

async function desktop(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await ctx.newPage();
  watch(page, "1280px");

  // Headers: the page's scripts come from /app.js, so no 'unsafe-inline'.
  const res = await page.goto(BASE + "/");
  const h = res.headers();
  assert.match(h["content-security-policy"], /script-src 'self'/);
  assert.doesNotMatch(h["content-security-policy"], /unsafe-inline/);
  assert.match(h["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(h["x-content-type-options"], "nosniff");
  const js = await page.request.get(BASE + "/app.js");
  assert.match(js.headers()["content-type"], /^text\/javascript/);
  const css = await page.request.get(BASE + "/style.css");
  assert.match(css.headers()["content-type"], /^text\/css/);
  ok("page, app.js and style.css served with CSP (no unsafe-inline) and nosniff");

  assert.match(await page.textContent("#status"), /API key/);
  await enterKey(page);
  const stored = await page.evaluate(() => ({
    s: sessionStorage.getItem("koptKey"),
    l: localStorage.getItem("koptKey"),
    n: localStorage.length,
  }));
  assert.equal(stored.s, KEY);
  assert.equal(stored.l, null);
  assert.equal(stored.n, 0);
  ok("API key typed and submitted with the keyboard; in sessionStorage, not in localStorage");

  // ---- overview ----
  const summary = await api("/v1/clusters/local/summary");
  const listed = (await api("/v1/recommendations?cluster=local&page_size=1000&view=RECOMMENDATION_VIEW_FULL"))
    .recommendations;
  assert.equal(await page.textContent("#c-workloads b"), String(summary.workloadCount));
  assert.equal(await page.textContent("#c-savings b"),
    Number(summary.monthlySavings).toFixed(2) + " " + summary.pricing.currency);
  assert.equal(await page.textContent("#c-idle b"), String(summary.idleWorkloadCount || 0));
  const nss = await page.$$eval("#nstable tbody tr", (t) => t.map((r) => r.dataset.ns));
  assert.deepEqual([...nss].sort(), ["batch", "shop"]);
  for (const ns of ["batch", "shop"]) {
    assert.equal(await page.locator(`#nschart rect.bar-req[data-ns="${ns}"]`).count(), 2);
    assert.equal(await page.locator(`#nschart rect.bar-rec[data-ns="${ns}"]`).count(), 2);
  }
  assert.match(await page.textContent("#idlelist"), /batch\/sleepy/);
  ok(`overview: ${summary.workloadCount} workloads, savings, idle list, namespace table and bar chart`);
  await page.screenshot({ path: SHOTS + "/overview.png", fullPage: false });

  // ---- table ----
  let names = await rowNames(page);
  assert.equal(names.length, listed.length);
  for (const want of ["shop/Deployment/web", "shop/StatefulSet/db", "batch/Deployment/sleepy", "batch/CronJob/report"])
    assert.ok(names.includes(want), want + " listed");
  const sav = (await colTexts(page, "savings")).map(qval);
  assert.deepEqual(sav, [...sav].sort((a, b) => b - a));
  const fit = await page.$eval("#wltable", (t) => [t.scrollWidth, t.parentNode.clientWidth]);
  assert.ok(fit[0] <= fit[1], "the table fits 1280 px: " + fit);
  ok(`table: one row per workload (${names.length}), largest savings first, fits 1280 px`);

  const webRow = 'tr.workload[data-id="shop/Deployment/web"]';
  assert.match(await page.textContent(`${webRow} td[data-col="cpureq"]`), /^1100m \u2192 \d+m?$/);
  assert.match(await page.textContent(`${webRow} td[data-col="memreq"]`), /^1152Mi \u2192 \d+(Mi|Gi)$/);
  await page.click(`${webRow} button.expand`);
  assert.equal(await page.getAttribute(`${webRow} button.expand`, "aria-expanded"), "true");
  const conts = await page.$$eval("#wlrows tr.container", (t) => t.map((r) => r.dataset.container));
  assert.deepEqual(conts, ["app", "proxy"]);
  const web = listed.find((r) => r.workload.name === "web");
  const app = web.containers.find((c) => c.container === "app");
  assert.equal(await page.textContent('#wlrows tr.container[data-container="app"] td[data-col="memlim"]'),
    `2Gi \u2192 ${Number(app.recommended.memoryLimitBytes) > 0 ? memQ(app.recommended.memoryLimitBytes) : "none"}`);
  assert.equal(await page.textContent('#wlrows tr.container[data-container="app"] td[data-col="cpureq"]'),
    `1 \u2192 ${cpuQ(app.recommended.cpuRequestCores)}`);
  ok("web expands to its containers app and proxy, requests and limits in Kubernetes quantities");
  await page.screenshot({ path: SHOTS + "/table.png", fullPage: true });

  // Every column sorts, both ways, and the URL says so.
  const cols = await page.$$eval("#wlhead th", (t) => t.map((x) => x.dataset.col));
  assert.equal(cols.length, 10);
  for (const col of cols) {
    for (let k = 0; k < 2; k++) {
      await page.click(`#wlhead th[data-col="${col}"] button`);
      const dir = await page.getAttribute(`#wlhead th[data-col="${col}"]`, "aria-sort");
      assert.ok(dir === "ascending" || dir === "descending", col + " aria-sort");
      // The default order (savings, largest first) leaves the URL bare.
      const u = new URL(page.url()).searchParams;
      if (col === "savings" && dir === "descending") assert.equal(u.get("sort"), null);
      else assert.deepEqual([u.get("sort"), u.get("dir")], [col, dir === "ascending" ? "asc" : "desc"]);
      const texts = await colTexts(page, col).then((t) => (t.length ? t : null));
      let vals;
      if (["name", "ns", "kind"].includes(col)) {
        vals = col === "name" ? (await rowNames(page)).map((id) => id.split("/")[2])
          : col === "ns" ? (await rowNames(page)).map((id) => id.split("/")[0])
            : (await rowNames(page)).map((id) => id.split("/")[1]);
        const sortedVals = [...vals].sort((a, b) => a.localeCompare(b));
        assert.deepEqual(vals, dir === "ascending" ? sortedVals : sortedVals.reverse(), col);
      } else {
        vals = texts.map((t) => qval(t.includes("\u2192") ? t.split("\u2192")[1] : t));
        const s = [...vals].sort((a, b) => a - b);
        assert.deepEqual(vals, dir === "ascending" ? s : s.reverse(), col + " " + texts.join("|"));
      }
    }
  }
  ok("every column sorts both ways (aria-sort, order checked, sort in the URL)");

  // ---- filters and the URL ----
  await page.selectOption("#f-ns", "batch");
  names = await rowNames(page);
  assert.ok(names.length >= 2 && names.every((n) => n.startsWith("batch/")));
  assert.ok(page.url().includes("ns=batch"));
  await page.selectOption("#f-kind", "CronJob");
  assert.deepEqual(await rowNames(page), ["batch/CronJob/report"]);
  assert.ok(page.url().includes("kind=CronJob"));
  await page.selectOption("#f-kind", "");
  await page.fill("#f-name", "slee");
  assert.deepEqual(await rowNames(page), ["batch/Deployment/sleepy"]);
  assert.ok(page.url().includes("q=slee"));
  ok("namespace, kind and name filters change the rows and the URL");

  await page.reload();
  await waitReady(page, "list");
  assert.equal(await page.inputValue("#f-ns"), "batch");
  assert.equal(await page.inputValue("#f-name"), "slee");
  assert.deepEqual(await rowNames(page), ["batch/Deployment/sleepy"]);
  ok("the view comes back from the URL after a reload");

  await page.goto(BASE + "/");
  await waitReady(page, "list");
  const all = listed.map((r) => Number(r.savings.monthlyCost)).sort((a, b) => a - b);
  const min = (all[1] + all[2]) / 2;
  await page.fill("#f-min", String(min));
  names = await rowNames(page);
  assert.equal(names.length, all.filter((v) => v >= min).length);
  assert.ok((await colTexts(page, "savings")).every((t) => qval(t) >= min));
  assert.ok(page.url().includes("min="));
  await page.fill("#f-min", "");
  const changed = listed.filter((r) => r.containers.some((c) => {
    for (const f of ["cpuRequestCores", "cpuLimitCores", "memoryRequestBytes", "memoryLimitBytes"]) {
      const a = Number(c.current?.[f] || 0), b = Number(c.recommended?.[f] || 0);
      if (a === 0 ? b > 0 : Math.abs(b - a) / a > 0.1) return true;
    }
    return false;
  })).length;
  assert.ok(changed > 0 && changed < listed.length, "the data has workloads on both sides");
  await page.check("#f-changes");
  assert.equal((await rowNames(page)).length, changed);
  assert.ok(!(await rowNames(page)).includes("batch/Deployment/tidy"));
  assert.ok(page.url().includes("changes=1"));
  await page.uncheck("#f-changes");
  ok(`minimum savings and "only changes > 10 %" (${changed} of ${listed.length}) filter the rows`);

  await page.selectOption("#f-cluster", "other");
  await waitReady(page, "list");
  await page.waitForFunction(() => location.search.includes("cluster=other"));
  await page.waitForSelector('tr.workload[data-id="default/Deployment/api"]');
  assert.deepEqual(await rowNames(page), ["default/Deployment/api"]);
  ok("the cluster filter loads the other cluster");

  // ---- keyboard only: Tab to a workload link, Enter opens its detail ----
  await page.goto(BASE + "/");
  await waitReady(page, "list");
  let tabs = 0;
  for (; tabs < 80; tabs++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement.classList.contains("wl-link") &&
      document.activeElement.closest("#wlrows") !== null)) break;
  }
  assert.ok(tabs < 80, "a workload link is reachable with Tab");
  const first = await page.evaluate(() => document.activeElement.closest("tr").dataset.id);
  await page.keyboard.press("Enter");
  await waitReady(page, "detail");
  assert.ok(page.url().includes("d=" + encodeURIComponent(first)));
  assert.equal(await page.evaluate(() => document.activeElement.id), "d-title");
  await page.focus("#back");
  await page.keyboard.press("Enter");
  await waitReady(page, "list");
  assert.equal(new URL(page.url()).searchParams.get("d"), null);
  ok(`keyboard only: ${tabs + 1} Tabs to ${first}, Enter opens its detail, Enter on "back" returns`);

  // ---- detail of web, opened from a shared URL ----
  await page.goto(BASE + "/?d=shop%2FDeployment%2Fweb");
  await waitReady(page, "detail");
  assert.equal(await page.textContent("#d-title"), "Deployment shop/web");
  assert.match(await page.textContent("#d-hpa"), /web-hpa/);
  const boxes = await page.$$eval("#d-containers section.container-box", (s) => s.map((x) => x.dataset.container));
  assert.deepEqual(boxes, ["app", "proxy"]);
  for (const c of boxes) {
    const box = `section.container-box[data-container="${c}"]`;
    assert.ok((await page.textContent(`${box} p.explanation`)).length > 20, "explanation");
    assert.match(await page.textContent(`${box} p.backtest`), /^Backtest: fitted on \d/);
    for (const kind of ["cpu", "memory"]) {
      const svg = `${box} svg.chart.${kind}`;
      for (const part of ["rect.band", "line.rec", "polyline.req", "polyline.p50", "polyline.p95", "polyline.max"])
        assert.equal(await page.locator(`${svg} ${part}`).count(), 1, `${c} ${kind} ${part}`);
      const n = await page.$eval(`${svg} polyline.p95`, (p) => p.getAttribute("points").split(" ").length);
      assert.ok(n >= 48, `${c} ${kind}: ${n} hours`);
      // The recommendation lies inside its band, both drawn on the same axes.
      const g = await page.evaluate((s) => {
        const b = document.querySelector(s + " rect.band"), r = document.querySelector(s + " line.rec");
        return { top: +b.getAttribute("y"), h: +b.getAttribute("height"), y: +r.getAttribute("y1") };
      }, svg);
      assert.ok(g.y >= g.top - 0.5 && g.y <= g.top + g.h + 0.5, `${c} ${kind} rec in band ${JSON.stringify(g)}`);
    }
  }
  ok("detail: both containers, explanation, HPA advice; CPU and memory charts with p50/p95/max of 48+ hours, request, recommendation inside its band");

  // Copy buttons: the clipboard gets the resources: block and the patch.
  await page.click(`section.container-box[data-container="app"] button.copy-yaml`);
  await page.waitForFunction(() => document.querySelector('section.container-box[data-container="app"] .actions span').textContent.includes("copied"));
  let clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clip, expectedYaml(app, 0));
  await page.click("#copy-patch");
  await page.waitForFunction(() => document.querySelector("#copy-status").textContent.includes("copied"));
  clip = await page.evaluate(() => navigator.clipboard.readText());
  const proxy = web.containers.find((c) => c.container === "proxy");
  assert.equal(clip, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n" +
    "spec:\n  template:\n    spec:\n      containers:\n" +
    "        - name: app\n" + expectedYaml(app, 10) + "        - name: proxy\n" + expectedYaml(proxy, 10));
  ok("copy YAML and copy kustomize patch put the right text on the clipboard");
  await page.screenshot({ path: SHOTS + "/detail.png", fullPage: true });

  // ---- a workload with minutes of data: its running hour is on the chart ----
  const fresh = listed.find((r) => r.workload.name === "fresh");
  if (fresh) {
    await page.goto(BASE + "/?d=shop%2FDeployment%2Ffresh");
    await waitReady(page, "detail");
    const pts = await page.$eval('section.container-box[data-container="app"] svg.chart.cpu polyline.p95',
      (p) => p.getAttribute("points").split(" ").length);
    assert.ok(pts >= 1);
    const dots = await page.locator('section.container-box[data-container="app"] svg.chart.cpu circle.dot').count();
    assert.ok(dots >= 1 && dots <= 2, "one dot per hour so far");
    ok(`fresh (12 minutes of data): ${dots} hour(s) drawn`);
    await page.screenshot({ path: SHOTS + "/detail-fresh.png", fullPage: true });
  } else {
    ok("fresh has no recommendation yet (usage checked by test_web.c)");
  }
  await ctx.close();
}

async function phone(browser) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  watch(page, "390px");
  await page.goto(BASE + "/");
  await enterKey(page);
  const over = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(over <= 390, "no sideways scrolling of the page at 390 px: " + over);
  await page.screenshot({ path: SHOTS + "/overview-phone.png", fullPage: false });
  await page.locator("#workloads").scrollIntoViewIfNeeded();
  await page.screenshot({ path: SHOTS + "/table-phone.png", fullPage: false });
  await page.goto(BASE + "/?d=shop%2FDeployment%2Fweb");
  await waitReady(page, "detail");
  const over2 = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(over2 <= 390, "detail fits 390 px: " + over2);
  const w = await page.$eval("svg.chart.cpu", (s) => s.getBoundingClientRect().width);
  assert.ok(w > 300 && w <= 390, "chart scaled to the phone: " + w);
  await page.screenshot({ path: SHOTS + "/detail-phone.png", fullPage: true });
  await page.locator("section.container-box").first().locator(".charts").screenshot({ path: SHOTS + "/detail-phone-charts.png" });
  ok("390 px: overview, table and detail fit the width (tables scroll inside their box)");
  await ctx.close();
}

// A key the advisor refuses: a clear message, no crash, nothing stored
// beyond the tab.
async function wrongKey(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page, "wrong key", /status of 401/);
  await page.goto(BASE + "/");
  await page.focus("#key");
  await page.keyboard.type("not-a-key-0123456789");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#err:not([hidden])");
  assert.match(await page.textContent("#err"), /API key or token was refused \(HTTP 401\)/);
  assert.equal(await page.locator("#wlrows tr").count(), 0);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  ok("a refused key: \"the API key or token was refused (HTTP 401)\", no rows, nothing in localStorage");
  await ctx.close();
}

main().catch((e) => {
  console.error("FAIL after " + checks + " checks: " + (e.stack || e));
  if (errors.length) console.error("console: " + errors.join("\n"));
  process.exit(1);
});
