// Real headless Chromium (Debian's package, driven by playwright-core: no browser
// download) and a Person: one browser context on the test page, with the few actions a
// person takes and a record of what must never happen (dialogs, uncaught errors, CSP
// violations). Every wait is on observed DOM state, never a fixed sleep.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** The browser under test; Debian's `chromium` package puts it here. */
export const chromiumPath = process.env.RC_CHROMIUM ?? "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Screenshots land here (git-ignored). */
export const outputDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "output");

/** How long a wait on the page may take before the test fails. */
export const WAIT_MS = Number(process.env.RC_BROWSER_WAIT_MS ?? 15_000);

/**
 * Why the browser tests cannot run here, or null. Under CI=true a missing browser is a
 * failure (the reason is thrown), never a skip.
 */
export function skipReason() {
  if (existsSync(chromiumPath)) return null;
  const reason = `${chromiumPath} not found: install it with apt-get install -y --no-install-recommends chromium (or set RC_CHROMIUM)`;
  if (process.env.CI === "true") throw new Error(`CI=true: ${reason}`);
  return reason;
}

export async function launchChromium() {
  await mkdir(outputDir, { recursive: true });
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: ARGS });
}

/** One person at one browser window, on the test page. */
export class Person {
  /** Dialogs the page raised (an XSS payload running would raise one). */
  dialogs = [];
  /** Uncaught exceptions in the page. */
  pageErrors = [];
  /** Content-Security-Policy violations the page reported. */
  cspViolations = [];

  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    page.setDefaultTimeout(WAIT_MS);
    page.on("dialog", (dialog) => {
      this.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on("pageerror", (err) => this.pageErrors.push(err.message));
    page.on("console", (msg) => {
      if (/Content Security Policy/i.test(msg.text())) this.cspViolations.push(msg.text());
      if (process.env.RC_BROWSER_CONSOLE) process.stderr.write(`[${name} console] ${msg.text()}\n`);
    });
  }

  /** A fresh browser context (its own storage: a separate person) on `url`. */
  static async open(browser, name, url, { viewport = { width: 1100, height: 760 } } = {}) {
    const context = await browser.newContext({ viewport });
    // Runs before the page's own scripts, outside its CSP, and survives reloads.
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    const page = await context.newPage();
    const person = new Person(name, context, page);
    await page.goto(url);
    return person;
  }

  $(selector, options) {
    return this.page.locator(selector, options);
  }

  /** Registers through the page's form; resolves to the user id the page shows. */
  async register({ email, password, displayName }) {
    await this.$("#register-email").fill(email);
    await this.$("#register-password").fill(password);
    await this.$("#register-name").fill(displayName);
    await this.$("#register-form button[type=submit]").click();
    await this.$("#me-id").filter({ hasText: /^\d+$/ }).waitFor();
    return Number(await this.$("#me-id").textContent());
  }

  /** Waits until the socket is connected over `transport` ("websocket" after the upgrade). */
  async connected(transport = "websocket") {
    await this.$(`#status[data-state="connected"]`, { hasText: transport }).waitFor();
  }

  /** The conversation-list entry whose title contains `title`. */
  conversation(title) {
    return this.$("#conversation-list .conv-item", { has: this.$(".title", { hasText: title }) });
  }

  async openConversation(title) {
    // On a phone-sized screen the list is hidden while a conversation is open.
    if (await this.$("#back-btn").isVisible()) await this.$("#back-btn").click();
    await this.conversation(title).click();
    await this.$("#conv-title", { hasText: title }).waitFor();
  }

  /** A message bubble whose content is exactly `text`. */
  message(text) {
    return this.$("#message-list .msg", { has: this.page.getByText(text, { exact: true }) });
  }

  /** The ticks of my message `text` once they show `status` (sent, delivered, read). */
  async ticks(text, status) {
    await this.message(text).locator(`.ticks[data-status="${status}"]`).waitFor();
  }

  async type(text) {
    await this.$("#composer-input").pressSequentially(text);
  }

  async send(text) {
    await this.$("#composer-input").fill(text);
    await this.$("#composer-input").press("Enter");
    // Confirmed by the server: the bubble carries a message id, no longer a pending one.
    await this.$("#message-list .msg[data-message-id]", {
      has: this.page.getByText(text, { exact: true }),
    }).waitFor();
  }

  async notice(pattern) {
    await this.$("#notices .notice", { hasText: pattern }).waitFor();
  }

  async screenshot(name) {
    await this.page.screenshot({ path: path.join(outputDir, `${name}.png`), fullPage: true });
  }

  /** What the page stores for its session (to talk to the server as this person). */
  token() {
    return this.page.evaluate(() => sessionStorage.getItem("realtime-chat.token"));
  }
}
