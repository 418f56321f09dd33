// The watcher's dashboard (issue 20): polls /v1/dashboard every 2 s and draws it.
//
// Every value is written with textContent (never innerHTML): event fields such as a block's
// invalidity reason or an L1 revert message can be chosen by an attacker. The page also never
// shows old figures as current: when the watcher does not answer, the whole page is marked stale
// with the time of the last answer.
import "./style.css";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Event {
  kind: string;
  [field: string]: Json;
}

interface Action {
  key: string;
  kind: string;
  outcome: string;
  l1Tx: string | null;
  reason: string | null;
  sentAt: number | null;
  deadline: number | null;
  secondsLeft: number | null;
  tight: boolean;
  attempts: number;
}

interface QueuedExit {
  priority: string;
  exitableAt: number;
  due: boolean;
  game: string;
  position: string;
  exitId: string | null;
}

interface Overview {
  watcher: string;
  monitor: boolean;
  generatedAt: number;
  safety: {
    safe: boolean;
    byzantineFrom: number | null;
    why: Event | null;
    stalled: boolean;
    stalledSince: number | null;
  };
  l1: {
    head: number;
    headTime: number;
    cursor: number;
    cursorTime: number;
    confirmations: number;
    lagBlocks: number;
    lagSeconds: number;
  };
  child: {
    committed: number;
    synced: number;
    lagBlocks: number;
    lagSeconds: number;
    pendingBlocks: number;
  };
  queues: {
    token: string;
    head: string | null;
    length: number;
    complete: boolean;
    exits: QueuedExit[];
  }[];
  events: { index: number; event: Event }[];
  eventsTotal: number;
  actions: Action[];
  actionsTotal: number;
  deadlineMargin: number;
  guarded: {
    owner: string;
    deadline: string;
    holdings: { token: string; amount: string; outputs: number }[];
  }[];
  funding: {
    balance: string;
    needed: string;
    enough: boolean;
    worth: number;
    short: number;
    at: number;
    syncedBlock: number;
  } | null;
}

const POLL_MS = 2000;
const ETH = "0x0000000000000000000000000000000000000000";
/// Events a person must look at, and those that are only news.
const ALARMING = new Set([
  "blockWithheld",
  "invalidBlock",
  "invalidStandardExit",
  "exitFromBadBlock",
  "batchRootMismatch",
  "actionFailed",
  "deadlineTight",
  "underfunded",
  "actionLost",
  "l1Reorg",
  "verdictDisagreement",
]);

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

/// An element with text content and attributes; children appended as given.
function el(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null)[]
): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

function replace(parent: HTMLElement, ...children: Node[]): void {
  parent.replaceChildren(...children);
}

function row(label: string, value: Node | string, cls = ""): Node[] {
  return [el("dt", {}, label), el("dd", cls ? { class: cls } : {}, value)];
}

function utc(t: number): string {
  return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function duration(s: number): string {
  const a = Math.abs(s);
  if (a < 60) return `${a}s`;
  if (a < 3600) return `${Math.floor(a / 60)}m ${a % 60}s`;
  if (a < 86400) return `${Math.floor(a / 3600)}h ${Math.floor((a % 3600) / 60)}m`;
  return `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h`;
}

/// Wei (a decimal string) as ETH with up to 6 decimals; exact digits kept in the title.
function ether(wei: string): string {
  let v: bigint;
  try {
    v = BigInt(wei);
  } catch {
    return wei;
  }
  const unit = 10n ** 18n;
  const whole = v / unit;
  const frac = (v % unit).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
  return `${whole}${frac ? "." + frac : ""} ETH`;
}

function tokenName(token: string): string {
  return token.toLowerCase() === ETH ? "ETH" : `token ${short(token)}`;
}

function amount(token: string, value: string): string {
  return token.toLowerCase() === ETH ? ether(value) : `${value} (base units)`;
}

function short(hex: string): string {
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

/// A transaction hash, whole (it wraps), so it can be copied and searched for.
function txNode(hash: string): HTMLElement {
  return el("code", { class: "tx", "data-tx": hash }, hash);
}

function humanKind(kind: string): string {
  return kind.replace(/([A-Z])/g, " $1").toLowerCase();
}

function fieldValue(key: string, v: Json): Node | string {
  if (typeof v === "string" && /^0x[0-9a-fA-F]{64}$/.test(v) && key.endsWith("tx")) return txNode(v);
  if (typeof v === "string" && /^0x[0-9a-fA-F]{40}$/.test(v)) return el("code", {}, v);
  if (Array.isArray(v)) return v.map((x) => String(x)).join(", ");
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderSafety(d: Overview): void {
  const box = byId("safety");
  const title = byId("safety-title");
  const why = byId("safety-why");
  const stalledSince = d.safety.stalledSince === null ? "?" : utc(d.safety.stalledSince);
  if (d.safety.safe && d.safety.stalled) {
    // "Safe" would be a lie: no bad block was seen while the watcher looked, but it stopped.
    box.dataset.state = "stalled";
    title.textContent = `STALLED since ${stalledSince}`;
    why.textContent = `the watcher has not completed a step since ${stalledSince}: no bad block was seen up to ${d.child.synced}, but it is not checking now — read its log and check its L1 endpoint`;
  } else if (d.safety.safe) {
    box.dataset.state = "safe";
    title.textContent = "SAFE";
    why.textContent = `every committed block up to ${d.child.synced} is available and valid`;
  } else {
    box.dataset.state = "byzantine";
    title.textContent = `BYZANTINE since block ${d.safety.byzantineFrom ?? "?"}`;
    const w = d.safety.why;
    if (w) {
      const reason = typeof w.reason === "string" ? `: ${w.reason}` : "";
      why.textContent = `${humanKind(w.kind)} (block ${String(w.blknum)})${reason} — exit what is guarded; do not accept payments in blocks from ${d.safety.byzantineFrom ?? "?"} on`;
    } else {
      why.textContent = "a committed block was withheld or invalid";
    }
    if (d.safety.stalled) {
      why.textContent += ` — and the watcher is STALLED since ${stalledSince}: it is not acting`;
    }
  }
  byId("monitor-badge").hidden = !d.monitor;
}

function renderCards(d: Overview): void {
  const l1Behind = d.l1.lagBlocks > d.l1.confirmations + 5;
  replace(
    byId("l1"),
    ...row("head", `${d.l1.head}`),
    ...row("cursor", `${d.l1.cursor} (${plural(d.l1.confirmations, "confirmation")})`),
    ...row(
      "lag",
      `${plural(d.l1.lagBlocks, "block")} · ${duration(d.l1.lagSeconds)}`,
      l1Behind ? "warn" : "",
    ),
    ...row("L1 time", utc(d.l1.headTime)),
  );
  byId("card-l1").dataset.state = l1Behind ? "warn" : "ok";
  const childBehind = d.child.lagBlocks > 1 || d.child.lagSeconds > 60;
  replace(
    byId("child"),
    ...row("committed", `${d.child.committed}`),
    ...row("synced", `${d.child.synced}`),
    ...row(
      "lag",
      `${plural(d.child.lagBlocks, "block")} · ${duration(d.child.lagSeconds)}`,
      childBehind ? "warn" : "",
    ),
    ...row("pending", `${d.child.pendingBlocks}`),
  );
  byId("card-child").dataset.state = childBehind ? "warn" : "ok";
  const f = d.funding;
  if (f) {
    replace(
      byId("funding"),
      ...row("balance", ether(f.balance), f.enough ? "" : "bad"),
      ...row("needed", ether(f.needed)),
      ...row(
        "covers",
        f.enough
          ? `all ${plural(f.worth, "guarded output")}`
          : `${f.worth - f.short} of ${plural(f.worth, "output")}`,
        f.enough ? "" : "bad",
      ),
      ...row("checked", `${utc(f.at)} at block ${f.syncedBlock}`),
    );
    byId("card-funding").dataset.state = f.enough ? "ok" : "bad";
  } else {
    replace(byId("funding"), ...row("balance", "not checked yet"));
    byId("card-funding").dataset.state = "ok";
  }
}

function renderQueues(d: Overview): void {
  const out: Node[] = [];
  for (const q of d.queues) {
    const head = el(
      "h3",
      {},
      `${tokenName(q.token)} · ${q.length} queued`,
      q.complete ? null : el("span", { class: "note" }, " (head only: queue still being read)"),
    );
    const list = el("ol", { class: "rows queue", "data-token": q.token });
    for (const x of q.exits) {
      const when = x.due
        ? "due now"
        : `due in ${duration(x.exitableAt - d.l1.headTime)}`;
      list.append(
        el(
          "li",
          { class: x.due ? "due" : "", "data-position": x.position },
          el("span", { class: "pill" }, x.game),
          el("span", {}, ` ${x.position} `),
          el("span", { class: "when" }, `${when} · ${utc(x.exitableAt)}`),
        ),
      );
    }
    if (q.exits.length === 0) list.append(el("li", { class: "empty" }, "empty"));
    out.push(el("div", { class: "queue-block" }, head, list));
  }
  if (out.length === 0) out.push(el("p", { class: "empty" }, "no exit queue yet"));
  replace(byId("queues"), ...out);
}

function renderEvents(d: Overview): void {
  const items = [...d.events].reverse().map(({ index, event }) => {
    const fields = el("dl", { class: "fields" });
    for (const [k, v] of Object.entries(event)) {
      if (k === "kind") continue;
      fields.append(el("dt", {}, k.replace(/_/g, " ")), el("dd", {}, fieldValue(k, v)));
    }
    return el(
      "li",
      {
        class: ALARMING.has(event.kind) ? "alarm" : "info",
        "data-kind": event.kind,
        "data-index": String(index),
      },
      el("div", { class: "kind" }, `#${index} ${humanKind(event.kind)}`),
      fields,
    );
  });
  if (items.length === 0) items.push(el("li", { class: "empty" }, "none"));
  replace(byId("events"), ...items);
  byId("events-count").textContent = `(${d.eventsTotal})`;
}

function renderActions(d: Overview): void {
  const items = [...d.actions].reverse().map((a) => {
    const fields = el("dl", { class: "fields" });
    const add = (k: string, v: Node | string) => fields.append(el("dt", {}, k), el("dd", {}, v));
    add("key", a.key);
    if (a.l1Tx) add("L1 tx", txNode(a.l1Tx));
    if (a.reason) add("reason", a.reason);
    if (a.sentAt !== null) add("sent", utc(a.sentAt));
    if (a.attempts > 1) add("attempts", String(a.attempts));
    if (a.deadline !== null) add("deadline", utc(a.deadline));
    if (a.secondsLeft !== null) {
      add(
        "margin",
        el(
          "span",
          { class: a.tight ? "bad" : "" },
          `${duration(a.secondsLeft)} left (margin ${duration(d.deadlineMargin)})${a.tight ? " — TIGHT" : ""}`,
        ),
      );
    }
    const bad = a.outcome === "refused" || a.outcome === "reverted" || a.tight;
    return el(
      "li",
      { class: bad ? "alarm" : "info", "data-kind": a.kind, "data-outcome": a.outcome },
      el(
        "div",
        { class: "kind" },
        `${humanKind(a.kind.replace(/-/g, " "))} `,
        el("span", { class: `pill ${a.outcome}` }, a.outcome),
      ),
      fields,
    );
  });
  if (items.length === 0) {
    items.push(el("li", { class: "empty" }, d.monitor ? "monitor: no actions" : "none"));
  }
  replace(byId("actions"), ...items);
  byId("actions-count").textContent = `(${d.actionsTotal})`;
}

function renderGuarded(d: Overview): void {
  const items = d.guarded.map((g) => {
    const held =
      g.holdings.length === 0
        ? "nothing exitable"
        : g.holdings
            .map((h) => `${amount(h.token, h.amount)} in ${plural(h.outputs, "output")}`)
            .join(" · ");
    return el(
      "li",
      { "data-owner": g.owner },
      el("code", {}, g.owner),
      el("div", { class: "held" }, held),
    );
  });
  if (items.length === 0) items.push(el("li", { class: "empty" }, "no owner guarded"));
  replace(byId("guarded"), ...items);
  byId("guarded-count").textContent = `(${d.guarded.length})`;
}

function render(d: Overview): void {
  byId("watcher-address").textContent = d.watcher;
  renderSafety(d);
  renderCards(d);
  renderQueues(d);
  renderEvents(d);
  renderActions(d);
  renderGuarded(d);
}

let lastOk = 0;

function setConnection(state: "live" | "stale", text: string): void {
  const c = byId("connection");
  c.dataset.state = state;
  c.textContent = text;
  document.body.dataset.stale = state === "stale" ? "true" : "false";
}

async function poll(): Promise<void> {
  try {
    const r = await fetch("v1/dashboard", { cache: "no-store" });
    if (!r.ok) {
      let msg = `HTTP ${r.status}`;
      try {
        const e = (await r.json()) as { error?: { message?: string } };
        if (e.error?.message) msg = e.error.message;
      } catch {
        // not JSON: the status says enough
      }
      throw new Error(msg);
    }
    const d = (await r.json()) as Overview;
    render(d);
    lastOk = Date.now();
    setConnection("live", `live · ${new Date().toISOString().slice(11, 19)} UTC`);
  } catch (e) {
    const since = lastOk ? `since ${new Date(lastOk).toISOString().slice(11, 19)} UTC` : "yet";
    setConnection("stale", `STALE: no answer ${since} (${e instanceof Error ? e.message : String(e)})`);
  } finally {
    window.setTimeout(() => void poll(), POLL_MS);
  }
}

void poll();
