// The realtime-chat test page (test_client.html). Plain browser JavaScript, no build step.
//
// Safety rule for this file: user content (messages, names, descriptions, server error
// text) only ever reaches the DOM as text: textContent, Node.append(string) (a text node)
// or attribute values. Nothing here assigns markup (innerHTML, insertAdjacentHTML,
// document.write). The server's Content-Security-Policy forbids inline script as a
// second line of defence.
//
// Everything is same-origin and relative: REST at api/…, Socket.IO at socket.io/, so the
// page works from http://127.0.0.1:5000/ and from a phone at http://LAN-ADDRESS:5000/.
"use strict";

(() => {
  const ACK_TIMEOUT_MS = 10_000;
  const PAGE_SIZE = 30;
  /** The server forwards one `typing: true` per 2 s; repeating a little faster keeps it lit. */
  const TYPING_REPEAT_MS = 1_500;
  const TYPING_IDLE_MS = 3_000;
  /** The server ends a silent indicator after 6 s; this only guards a lost `false`. */
  const TYPING_SHOW_MS = 8_000;
  const EVENT_LOG_SIZE = 200;
  /** Handshake refusals that say nothing against the token: retried, not logged out. */
  const RETRYABLE_REFUSALS = new Set([
    "authentication temporarily unavailable",
    "too many connections for this user",
    "server connection limit reached",
  ]);
  const TOKEN_KEY = "realtime-chat.token";
  const openKey = (userId) => `realtime-chat.open.${userId}`;

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM helpers

  /** Builds an element; `text` becomes textContent, strings among children text nodes. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const today = new Date().toDateString() === date.toDateString();
    return today ? time : `${date.toLocaleDateString()} ${time}`;
  }

  function userLabel(userId) {
    if (state.me && userId === state.me.id) return "You";
    return `User #${userId}`;
  }

  /** "2, 3 ,4" → [2, 3, 4]; anything else is a mistake worth saying out loud. */
  function parseIds(text) {
    const parts = text.split(/[\s,;]+/).filter(Boolean);
    const ids = parts.map(Number);
    const bad = parts.filter((_, i) => !Number.isInteger(ids[i]) || ids[i] <= 0);
    if (bad.length) throw new Error(`not a user id: ${bad.join(", ")}`);
    return ids;
  }

  /** A client_msg_id. crypto.randomUUID needs a secure context, which a LAN address is not. */
  function newClientMsgId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---------------------------------------------------------------- notices

  /** Shows a notice; a `key` makes a repeat replace the previous one instead of stacking. */
  function notify(text, { key, kind = "error" } = {}) {
    const list = $("notices");
    let node = key ? list.querySelector(`[data-key="${CSS.escape(key)}"]`) : null;
    if (!node) {
      node = el("div", {
        className: `notice ${kind}`,
        role: kind === "error" ? "alert" : "status",
        dataset: key ? { key } : {},
      });
      const dismissButton = el("button", { type: "button", "aria-label": "Dismiss", text: "×" });
      dismissButton.addEventListener("click", () => node.remove());
      node.append(el("span", { className: "text" }), dismissButton);
      list.append(node);
      while (list.children.length > 6) list.firstElementChild.remove();
    }
    node.querySelector(".text").textContent = text;
  }

  function clearNotice(key) {
    $("notices").querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
  }

  /** A failed REST call or socket request, in plain words. */
  function reportFailure(doing, err) {
    notify(`${doing} failed: ${describe(err)}`);
  }

  function describe(err) {
    if (err instanceof ApiError) {
      return err.status ? `${err.message} (HTTP ${err.status})` : err.message;
    }
    if (err instanceof RequestError) return `${err.message} (${err.code})`;
    return err?.message ?? String(err);
  }

  // ---------------------------------------------------------------- state

  /** Messages of one conversation that this page has loaded, by id and by seq. */
  class Thread {
    constructor(conversationId) {
      this.conversationId = conversationId;
      this.byId = new Map();
      this.bySeq = new Map();
      /** Lowest seq loaded; older pages are fetched before it. */
      this.oldestSeq = null;
      /** Every seq from oldestSeq up to this one is here: `sync` asks for what follows. */
      this.contiguousSeq = 0;
      this.hasOlder = true;
      this.loaded = false;
      /** While the first page is on its way, live messages wait here (not lost, not early). */
      this.arrivedWhileLoading = null;
      /** Highest message id of mine known delivered to every other member. */
      this.deliveredUpTo = 0;
      /** Reader id → highest message id they read (ids grow with seq in a conversation). */
      this.readUpTo = new Map();
      /** Highest message id of the others' that this page has marked read. */
      this.markedUpTo = 0;
    }

    /** Adds a message (any of the wire shapes); false if it was already here. */
    add(message) {
      if (this.byId.has(message.id)) {
        const known = this.byId.get(message.id);
        known.delivered_at ??= message.delivered_at;
        known.read_at ??= message.read_at;
        return false;
      }
      this.byId.set(message.id, message);
      this.bySeq.set(message.seq, message);
      if (this.oldestSeq === null || message.seq < this.oldestSeq) {
        this.oldestSeq = message.seq;
        if (this.contiguousSeq < this.oldestSeq) this.contiguousSeq = this.oldestSeq - 1;
      }
      while (this.bySeq.has(this.contiguousSeq + 1)) this.contiguousSeq += 1;
      return true;
    }

    /** The newest seq on the server is past what this page holds without a hole. */
    hasGapBefore(seq) {
      return this.loaded && seq > this.contiguousSeq + 1;
    }
  }

  /** Normalises a history row, a `new_message`, a `sync` row or a send ack + content. */
  function toMessage(raw) {
    return {
      id: raw.id ?? raw.message_id,
      conversation_id: raw.conversation_id,
      seq: raw.seq,
      sender_id: raw.sender_id ?? raw.from_user_id,
      content: raw.content,
      sent_at: raw.sent_at,
      delivered_at: raw.delivered_at ?? null,
      read_at: raw.read_at ?? null,
    };
  }

  const state = {
    token: null,
    me: null,
    socket: null,
    /** Set once the socket has connected, so a later `connect` is known to be a reconnect. */
    hadConnection: false,
    /** conversation_id → the row from GET /api/conversations, kept current by events. */
    conversations: new Map(),
    threads: new Map(),
    openId: null,
    /** conversation_id → Map(user_id → timer) of members typing there. */
    typing: new Map(),
    /** client_msg_id → a message sent from this page and not yet confirmed. */
    pending: new Map(),
    /** The group shown in the member panel, as GET /api/groups/{id} answered. */
    group: null,
    typingSentAt: 0,
    typingIdleTimer: null,
    typingConversation: null,
  };

  function thread(conversationId) {
    let t = state.threads.get(conversationId);
    if (!t) {
      t = new Thread(conversationId);
      state.threads.set(conversationId, t);
    }
    return t;
  }

  // ---------------------------------------------------------------- REST

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** A refused socket request: the ack's `{ error: { code, message } }`. */
  class RequestError extends Error {
    constructor({ code, message }) {
      super(message);
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (state.token) init.headers.authorization = `Bearer ${state.token}`;
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, `the server could not be reached (${err.message})`);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: the status line says enough.
    }
    if (!res.ok) {
      const error = new ApiError(res.status, data?.error ?? (text.trim() || res.statusText));
      if (res.status === 401 && state.me) sessionExpired(error.message);
      throw error;
    }
    return data;
  }

  // ---------------------------------------------------------------- socket requests

  /** emitWithAck with a timeout; a refusal rejects with a RequestError. */
  async function request(event, payload) {
    const socket = state.socket;
    if (!socket?.connected) throw new Error("not connected to the server");
    const answer = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (answer?.error) throw new RequestError(answer.error);
    return answer;
  }

  // ---------------------------------------------------------------- log in / out

  function saveToken(token, remember) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
  }

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
  }

  function forgetToken() {
    if (localStorage.getItem(TOKEN_KEY) === state.token) localStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
  }

  async function signIn(token, user) {
    state.token = token;
    state.me = user;
    $("me-name").textContent = user.display_name || user.email;
    $("me-id").textContent = String(user.id);
    show($("me"), true);
    show($("logout-btn"), true);
    show($("auth-view"), false);
    show($("chat-view"), true);
    clearNotice("session");
    connect();
    await refreshConversations();
    const remembered = Number(sessionStorage.getItem(openKey(user.id)));
    if (remembered && state.conversations.has(remembered)) await openConversation(remembered);
  }

  function signOut() {
    forgetToken();
    state.socket?.disconnect();
    state.socket = null;
    state.token = null;
    state.me = null;
    location.reload();
  }

  /** A 401 from the server or a refused handshake: the token is no good any more. */
  function sessionExpired(reason) {
    notify(`You are logged out: ${reason}. Log in again.`, { key: "session" });
    forgetToken();
    // Nothing of this session may leak into the next login (maybe another user's).
    state.socket?.disconnect();
    state.socket = null;
    state.hadConnection = false;
    state.token = null;
    state.me = null;
    state.conversations = new Map();
    state.threads.clear();
    state.pending.clear();
    state.openId = null;
    state.group = null;
    clearAllTyping();
    $("conversation-list").replaceChildren();
    $("message-list").replaceChildren();
    show($("conv-pane"), false);
    show($("conv-empty"), true);
    show($("chat-view"), false);
    show($("auth-view"), true);
    show($("me"), false);
    show($("connect-btn"), false);
    show($("disconnect-btn"), false);
    setStatus("offline", "Not connected");
  }

  function bindAuthForms() {
    const remember = () => $("remember").checked;
    $("register-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {
        email: $("register-email").value.trim(),
        password: $("register-password").value,
      };
      const name = $("register-name").value.trim();
      if (name) body.display_name = name;
      try {
        const { token, user } = await api("POST", "api/auth/register", body);
        saveToken(token, remember());
        await signIn(token, user);
      } catch (err) {
        reportFailure("Registering", err);
      }
    });
    $("login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const { token, user } = await api("POST", "api/auth/login", {
          email: $("login-email").value.trim(),
          password: $("login-password").value,
        });
        saveToken(token, remember());
        await signIn(token, user);
      } catch (err) {
        reportFailure("Logging in", err);
      }
    });
    $("token-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      state.token = token;
      try {
        const user = await api("GET", "api/me");
        saveToken(token, remember());
        await signIn(token, user);
      } catch (err) {
        state.token = null;
        reportFailure("Using the token", err);
      }
    });
    $("logout-btn").addEventListener("click", signOut);
  }

  // ---------------------------------------------------------------- connection

  function setStatus(kind, text) {
    const node = $("status");
    node.dataset.state = kind;
    node.textContent = text;
    show($("connect-btn"), kind === "offline" || kind === "error");
    show($("disconnect-btn"), kind !== "offline" && kind !== "error");
  }

  function connect() {
    if (state.socket) {
      state.socket.connect();
      return;
    }
    setStatus("connecting", "Connecting…");
    // Same origin, relative path: whatever host and port served this page.
    const socket = io({
      path: new URL("socket.io/", document.baseURI).pathname,
      auth: { token: state.token },
    });
    state.socket = socket;
    const manager = socket.io;

    socket.on("connect", () => {
      const transport = manager.engine.transport.name;
      setStatus("connected", `Connected (${transport})`);
      clearNotice("connection");
      manager.engine.once("upgrade", (t) => setStatus("connected", `Connected (${t.name})`));
      if (state.hadConnection) afterReconnect();
      state.hadConnection = true;
      markOpenRead();
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") {
        setStatus("offline", "Disconnected");
      } else if (reason === "io server disconnect") {
        // The server drops a device it cannot keep up with; its queue waits for the
        // reconnect. socket.io-client does not reconnect after this reason by itself.
        setStatus("reconnecting", "Disconnected by the server; reconnecting…");
        setTimeout(() => state.socket === socket && socket.connect(), 1_000);
      } else {
        setStatus("reconnecting", `Connection lost (${reason}); reconnecting…`);
      }
      clearAllTyping();
    });
    socket.on("connect_error", (err) => {
      if (socket.active) {
        // A transport failure: socket.io-client keeps retrying on its own.
        setStatus("reconnecting", "Cannot reach the server; retrying…");
        notify(`Cannot connect to the server: ${err.message}. Retrying…`, { key: "connection" });
      } else if (RETRYABLE_REFUSALS.has(err.message)) {
        // Busy or full: the token may be fine. Try again in a while.
        setStatus("reconnecting", "Server busy; retrying…");
        notify(`Cannot connect to the server: ${err.message}. Retrying…`, { key: "connection" });
        setTimeout(() => state.socket === socket && socket.connect(), 5_000);
      } else if (err.message === "origin not allowed") {
        setStatus("error", "Refused");
        notify(
          `The server refused this page's connection: ${err.message}. It is started with ` +
            `CORS_ORIGINS, which must list this page's origin too (${location.origin}).`,
          { key: "connection" },
        );
      } else {
        // The server refused the handshake (bad or expired token…): retrying cannot help.
        setStatus("error", "Refused");
        sessionExpired(`the server refused the connection: ${err.message}`);
      }
    });
    manager.on("reconnect_attempt", (attempt) => {
      setStatus("reconnecting", `Reconnecting (attempt ${attempt})…`);
    });

    socket.on("authenticated", ({ user_id }) => {
      if (state.me && user_id !== state.me.id) {
        notify(`The server says this token is user ${user_id}, not user ${state.me.id}.`);
      }
    });
    socket.on("error", ({ message, code }) => {
      notify(`The server refused a request: ${message} (${code})`);
    });
    socket.on("new_message", onNewMessage);
    socket.on("message_delivered", onDelivered);
    socket.on("message_read", onRead);
    socket.on("conversation_read", onConversationRead);
    socket.on("typing", onTyping);
    socket.on("user_online", ({ user_id }) => setPresence(user_id, true, null));
    socket.on("user_offline", ({ user_id, last_seen }) => setPresence(user_id, false, last_seen));
    for (const event of [
      "group_created",
      "member_added",
      "member_removed",
      "member_left",
      "role_changed",
      "group_updated",
    ]) {
      socket.on(event, (payload) => onGroupEvent(event, payload));
    }
    socket.onAny((event, ...args) => logEvent("←", event, args));
    socket.onAnyOutgoing((event, ...args) => logEvent("→", event, args));
  }

  /**
   * After a reconnect: messages emitted while the connection was down may be lost for this
   * device (the server counts them delivered once handed to a socket), so ask `sync` for
   * everything after what each loaded conversation holds, resend unconfirmed messages
   * (same client_msg_id: never stored twice), and refresh the list.
   */
  async function afterReconnect() {
    for (const p of state.pending.values()) if (p.status === "unconfirmed") transmit(p);
    // The list first: it drops the groups we were removed from meanwhile, which sync refuses.
    await refreshConversations();
    await syncThreads([...state.threads.values()].filter((t) => t.loaded));
    if (state.group) await loadGroupPanel(state.group.conversation_id);
  }

  /** `sync { since }` for these threads until `has_more` is false. */
  async function syncThreads(threads) {
    let wanted = threads;
    let asked = "";
    while (wanted.length) {
      const since = wanted.map((t) => ({ conversation_id: t.conversationId, after_seq: t.contiguousSeq }));
      // The same question twice means the answer moved nothing on: stop rather than spin.
      if (JSON.stringify(since) === asked) return;
      asked = JSON.stringify(since);
      let answer;
      try {
        answer = await request("sync", { since });
      } catch (err) {
        if (err instanceof RequestError && err.code === "conversation_not_found" && wanted.length > 1) {
          // One of them is gone (we left or were removed): sync the others one by one.
          for (const t of wanted) await syncThreads([t]);
          return;
        }
        if (!(err instanceof RequestError)) reportFailure("Catching up after the reconnect", err);
        return;
      }
      for (const raw of answer.messages) addMessage(toMessage(raw), { live: true });
      if (!answer.has_more) return;
      wanted = wanted.filter((t) => answer.messages.some((m) => m.conversation_id === t.conversationId));
    }
  }

  function bindConnectionButtons() {
    $("connect-btn").addEventListener("click", connect);
    $("disconnect-btn").addEventListener("click", () => state.socket?.disconnect());
  }

  // ---------------------------------------------------------------- event log

  function logEvent(direction, event, args) {
    const list = $("event-list");
    let body = "";
    try {
      body = args.filter((a) => typeof a !== "function").map((a) => JSON.stringify(a)).join(" ");
    } catch {
      body = "(unprintable)";
    }
    const time = new Date().toLocaleTimeString();
    list.append(el("li", { text: `${time} ${direction} ${event} ${body}` }));
    while (list.children.length > EVENT_LOG_SIZE) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  // ---------------------------------------------------------------- conversation list

  async function refreshConversations() {
    let data;
    try {
      data = await api("GET", "api/conversations");
    } catch (err) {
      reportFailure("Loading the conversation list", err);
      return;
    }
    const previous = state.conversations;
    state.conversations = new Map(data.conversations.map((c) => [c.conversation_id, c]));
    for (const id of previous.keys()) {
      if (!state.conversations.has(id)) conversationGone(id);
    }
    renderConversationList();
    if (state.openId) renderConversationHeader();
  }

  let refreshTimer = null;
  /** Several group events in a row cost one list request. */
  function refreshConversationsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshConversations, 150);
  }

  function conversationTitle(c) {
    if (!c) return "";
    return c.kind === "group" ? c.name : userLabel(c.other_user_id);
  }

  function presenceText(c) {
    if (c.kind === "group") return `${c.member_count ?? "?"} members`;
    if (c.online) return "online";
    return c.last_seen ? `last seen ${formatTime(c.last_seen)}` : "offline";
  }

  let listRedraw = null;
  /** Redraws the list once for a burst of events (a catch-up is thousands of messages). */
  function renderConversationList() {
    listRedraw ??= setTimeout(() => {
      listRedraw = null;
      if (state.me) drawConversationList();
    }, 0);
  }

  function drawConversationList() {
    const list = $("conversation-list");
    const sorted = [...state.conversations.values()].sort((a, b) =>
      (b.updated_at ?? "").localeCompare(a.updated_at ?? ""),
    );
    list.replaceChildren(...sorted.map(conversationItem));
    show($("no-conversations"), sorted.length === 0);
  }

  function conversationItem(c) {
    const typers = [...(state.typing.get(c.conversation_id)?.keys() ?? [])];
    const title = el(
      "span",
      { className: "title" },
      c.kind === "direct" ? el("span", { className: `dot${c.online ? " online" : ""}` }) : null,
      conversationTitle(c),
      c.kind === "group" ? el("span", { className: "kind", text: "group" }) : null,
    );
    const preview = typers.length
      ? el("span", { className: "preview typing", text: `${typers.map(userLabel).join(", ")} typing…` })
      : el("span", {
          className: "preview",
          text: c.last_message
            ? `${c.last_message.sender_id === state.me?.id ? "You: " : ""}${c.last_message.content}`
            : "No messages yet",
        });
    const unread = c.unread_count > 0 ? el("span", { className: "badge unread", text: c.unread_count }) : null;
    const button = el(
      "button",
      {
        type: "button",
        className: "conv-item",
        "aria-current": c.conversation_id === state.openId ? "true" : "false",
        dataset: { conversationId: c.conversation_id, kind: c.kind },
      },
      title,
      el("span", { className: "time", text: formatTime(c.last_message?.sent_at ?? c.updated_at) }),
      preview,
      unread ?? el("span"),
      el("span", { className: "presence", text: presenceText(c) }),
    );
    button.addEventListener("click", () => openConversation(c.conversation_id));
    return el("li", {}, button);
  }

  /** We left or were removed: forget the conversation everywhere on the page. */
  function conversationGone(conversationId) {
    state.threads.delete(conversationId);
    state.typing.delete(conversationId);
    if (state.openId === conversationId) closeConversation();
  }

  function setPresence(userId, online, lastSeen) {
    for (const c of state.conversations.values()) {
      if (c.kind === "direct" && c.other_user_id === userId) {
        c.online = online;
        if (lastSeen) c.last_seen = lastSeen;
      }
    }
    const member = state.group?.members.find((m) => m.user_id === userId);
    if (member) {
      member.online = online;
      if (lastSeen) member.last_seen = lastSeen;
      renderGroupPanel();
    }
    renderConversationList();
    if (state.openId) renderConversationHeader();
  }

  // ---------------------------------------------------------------- opening a conversation

  async function openConversation(conversationId) {
    if (state.openId !== conversationId) {
      stopTyping();
      state.openId = conversationId;
      state.group = null;
      show($("group-panel"), false);
      $("members-btn").setAttribute("aria-expanded", "false");
      $("message-list").replaceChildren();
      $("typing-line").textContent = "";
      sessionStorage.setItem(openKey(state.me.id), String(conversationId));
    }
    show($("conv-empty"), false);
    show($("conv-pane"), true);
    $("chat-view").classList.add("conversation-open");
    renderConversationHeader();
    renderConversationList();
    const t = thread(conversationId);
    if (!t.loaded) {
      await loadNewest(t);
    } else {
      for (const m of [...t.byId.values()].sort((a, b) => a.seq - b.seq)) renderMessage(m);
      for (const p of state.pending.values()) if (p.conversationId === conversationId) renderPending(p);
      scrollToBottom();
    }
    renderHistoryTop();
    renderTypingLine();
    markOpenRead();
    $("composer-input").focus({ preventScroll: true });
  }

  function closeConversation() {
    stopTyping();
    state.openId = null;
    state.group = null;
    if (state.me) sessionStorage.removeItem(openKey(state.me.id));
    show($("conv-pane"), false);
    show($("conv-empty"), true);
    $("chat-view").classList.remove("conversation-open");
    renderConversationList();
  }

  function renderConversationHeader() {
    const c = state.conversations.get(state.openId);
    $("conv-title").textContent = c ? conversationTitle(c) : `Conversation ${state.openId}`;
    const subtitle = $("conv-subtitle");
    subtitle.replaceChildren();
    if (c) {
      if (c.kind === "direct") subtitle.append(el("span", { className: `dot${c.online ? " online" : ""}` }));
      subtitle.append(presenceText(c));
    }
    show($("members-btn"), c?.kind === "group");
  }

  async function loadNewest(t) {
    const conversationId = t.conversationId;
    if (t.arrivedWhileLoading) return; // already on its way
    t.arrivedWhileLoading = [];
    try {
      const data = await api("GET", `api/messages?conversation_id=${conversationId}&limit=${PAGE_SIZE}`);
      t.loaded = true;
      t.hasOlder = data.has_more;
      for (const raw of data.messages) t.add(toMessage(raw));
    } catch (err) {
      reportFailure("Loading the messages", err);
      return;
    } finally {
      const arrived = t.arrivedWhileLoading;
      t.arrivedWhileLoading = null;
      // Now in place behind the page (a gap between them is filled by sync).
      if (t.loaded) for (const m of arrived) addMessage(m, { live: false });
    }
    if (state.openId !== conversationId) return;
    for (const m of [...t.byId.values()].sort((a, b) => a.seq - b.seq)) renderMessage(m);
    for (const p of state.pending.values()) if (p.conversationId === conversationId) renderPending(p);
    renderHistoryTop();
    scrollToBottom();
  }

  let loadingOlder = false;
  async function loadOlder() {
    const t = state.threads.get(state.openId);
    if (!t || !t.loaded || !t.hasOlder || loadingOlder || t.oldestSeq === null) return;
    loadingOlder = true;
    const history = $("history");
    const fromBottom = history.scrollHeight - history.scrollTop;
    try {
      const data = await api(
        "GET",
        `api/messages?conversation_id=${t.conversationId}&before_seq=${t.oldestSeq}&limit=${PAGE_SIZE}`,
      );
      t.hasOlder = data.has_more;
      for (const raw of data.messages) {
        const m = toMessage(raw);
        if (t.add(m) && state.openId === t.conversationId) renderMessage(m);
      }
      // Keep the message the reader was looking at where it was.
      history.scrollTop = history.scrollHeight - fromBottom;
    } catch (err) {
      reportFailure("Loading older messages", err);
    } finally {
      loadingOlder = false;
      renderHistoryTop();
    }
  }

  function renderHistoryTop() {
    const t = state.threads.get(state.openId);
    const more = !t || !t.loaded || t.hasOlder;
    show($("older-btn"), more);
    show($("history-start"), !more);
  }

  // ---------------------------------------------------------------- messages

  function nearBottom() {
    const h = $("history");
    return h.scrollHeight - h.scrollTop - h.clientHeight < 80;
  }

  function scrollToBottom() {
    const h = $("history");
    h.scrollTop = h.scrollHeight;
  }

  /** A message arrived (live, by sync or confirmed): store it, show it, update the list. */
  function addMessage(m, { live }) {
    const t = state.threads.get(m.conversation_id);
    t?.arrivedWhileLoading?.push(m);
    if (t?.loaded) {
      if (t.hasGapBefore(m.seq)) syncThreads([t]);
      if (!t.add(m)) return false;
      if (state.openId === m.conversation_id) {
        const stick = nearBottom() || m.sender_id === state.me.id;
        renderMessage(m);
        if (stick) scrollToBottom();
      }
    }
    const c = state.conversations.get(m.conversation_id);
    if (!c) {
      // A conversation this page has not heard of yet (someone's first message, a new group).
      refreshConversationsSoon();
      return true;
    }
    if (live && (!c.updated_at || m.sent_at >= (c.last_message?.sent_at ?? ""))) {
      c.last_message = { content: m.content, sent_at: m.sent_at, sender_id: m.sender_id };
      c.updated_at = m.sent_at;
    }
    return true;
  }

  function onNewMessage(raw) {
    const m = toMessage(raw);
    const added = addMessage(m, { live: true });
    const c = state.conversations.get(m.conversation_id);
    if (added && c && m.sender_id !== state.me.id && !isBeingRead(m.conversation_id)) {
      c.unread_count = (c.unread_count ?? 0) + 1;
    }
    clearTyping(m.conversation_id, m.sender_id);
    renderConversationList();
    if (m.sender_id !== state.me.id) markOpenRead();
    if (c && c.kind === "direct" && m.sender_id !== state.me.id && c.online == null) learnPresence(c);
  }

  /**
   * The server shows a user's presence only to people that user has written to: the
   * first message from a direct partner may make theirs visible, so ask once.
   */
  async function learnPresence(c) {
    if (c.presencePending) return;
    c.presencePending = true;
    try {
      const { users } = await api("GET", `api/presence?user_ids=${c.other_user_id}`);
      for (const u of users) setPresence(u.user_id, u.online, u.last_seen);
    } catch (err) {
      reportFailure("Loading who is online", err);
    } finally {
      c.presencePending = false;
    }
  }

  function isBeingRead(conversationId) {
    return state.openId === conversationId && document.visibilityState === "visible";
  }

  /** One message element; mine carry ticks. Content goes in as text, always. */
  function renderMessage(m) {
    const list = $("message-list");
    const existing = list.querySelector(`[data-message-id="${m.id}"]`);
    const mine = m.sender_id === state.me.id;
    const node = el(
      "li",
      { className: `msg${mine ? " mine" : ""}`, dataset: { messageId: m.id, seq: m.seq } },
      mine ? null : el("div", { className: "sender", text: userLabel(m.sender_id) }),
      el("div", { className: "content", text: m.content }),
      el(
        "div",
        { className: "meta" },
        el("time", { datetime: m.sent_at, text: formatTime(m.sent_at) }),
        mine ? el("span", { className: "ticks" }) : null,
      ),
    );
    if (existing) existing.replaceWith(node);
    else {
      // In seq order, pending messages (no seq yet) last. Walk from the end: live messages
      // land there at once.
      let before = list.lastElementChild;
      while (before && (!before.dataset.seq || Number(before.dataset.seq) > m.seq)) {
        before = before.previousElementSibling;
      }
      list.insertBefore(node, before ? before.nextElementSibling : list.firstElementChild);
    }
    if (mine) renderTicks(m);
  }

  /** sent ✓, delivered ✓✓, read ✓✓ (blue); in a group, read once every other member read. */
  function messageStatus(m) {
    const t = state.threads.get(m.conversation_id);
    const c = state.conversations.get(m.conversation_id);
    const readers = t ? [...t.readUpTo.values()].filter((upTo) => upTo >= m.id).length : 0;
    const othersCount = c?.kind === "group" ? Math.max((c.member_count ?? 2) - 1, 1) : 1;
    if (m.read_at || readers >= othersCount) return { status: "read", readers, othersCount };
    if (m.delivered_at || (t && m.id <= t.deliveredUpTo)) return { status: "delivered", readers, othersCount };
    return { status: "sent", readers, othersCount };
  }

  function renderTicks(m) {
    const node = $("message-list").querySelector(`[data-message-id="${m.id}"] .ticks`);
    if (!node) return;
    const { status, readers, othersCount } = messageStatus(m);
    node.dataset.status = status;
    node.textContent = status === "sent" ? "✓" : "✓✓";
    let title = status;
    if (othersCount > 1 && status !== "read") title += ` (read by ${readers} of ${othersCount})`;
    node.title = title;
    node.setAttribute("aria-label", title);
  }

  function renderAllTicks(conversationId) {
    const t = state.threads.get(conversationId);
    if (!t || state.openId !== conversationId) return;
    for (const m of t.byId.values()) if (m.sender_id === state.me.id) renderTicks(m);
  }

  /** Delivery moves positions: every earlier message of mine is delivered too. */
  function onDelivered({ message_id, conversation_id, delivered_at }) {
    const t = state.threads.get(conversation_id);
    if (!t) return;
    t.deliveredUpTo = Math.max(t.deliveredUpTo, message_id);
    const m = t.byId.get(message_id);
    if (m) m.delivered_at ??= delivered_at;
    renderAllTicks(conversation_id);
  }

  function onRead({ conversation_id, message_id, reader_id }) {
    const t = state.threads.get(conversation_id);
    if (!t) return;
    t.readUpTo.set(reader_id, Math.max(t.readUpTo.get(reader_id) ?? 0, message_id));
    renderAllTicks(conversation_id);
  }

  /** I read it on another device. */
  function onConversationRead({ conversation_id }) {
    const c = state.conversations.get(conversation_id);
    if (c) c.unread_count = 0;
    renderConversationList();
  }

  let marking = false;
  let markAgain = false;
  /** Marks the open conversation read while the page is visible and connected. */
  async function markOpenRead() {
    const conversationId = state.openId;
    if (!conversationId || !isBeingRead(conversationId) || !state.socket?.connected) return;
    const c = state.conversations.get(conversationId);
    const t = state.threads.get(conversationId);
    let newestTheirs = 0;
    for (const m of t?.byId.values() ?? []) {
      if (m.sender_id !== state.me.id && m.id > newestTheirs) newestTheirs = m.id;
    }
    if (!c?.unread_count && newestTheirs <= (t?.markedUpTo ?? 0)) return;
    if (marking) {
      markAgain = true;
      return;
    }
    marking = true;
    try {
      await request("mark_read", { conversation_id: conversationId });
      if (t) t.markedUpTo = Math.max(t.markedUpTo, newestTheirs);
      if (c) c.unread_count = 0;
      renderConversationList();
    } catch (err) {
      // A refusal also arrives as an `error` event, which is shown.
      if (!(err instanceof RequestError)) reportFailure("Marking the conversation read", err);
    } finally {
      marking = false;
      if (markAgain) {
        markAgain = false;
        markOpenRead();
      }
    }
  }

  // ---------------------------------------------------------------- sending

  function bindComposer() {
    const input = $("composer-input");
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      sendFromComposer();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        sendFromComposer();
      }
    });
    input.addEventListener("input", () => {
      if (input.value.trim()) typingNow();
      else stopTyping();
    });
    input.addEventListener("blur", stopTyping);
  }

  function sendFromComposer() {
    const input = $("composer-input");
    const content = input.value;
    if (!content.trim() || !state.openId) return;
    input.value = "";
    stopTyping({ tell: false }); // sending ends the indicator on the server
    const p = { clientMsgId: newClientMsgId(), conversationId: state.openId, content, status: "pending" };
    state.pending.set(p.clientMsgId, p);
    renderPending(p);
    scrollToBottom();
    transmit(p);
  }

  /** Sends (or resends) a pending message; its client_msg_id makes a resend harmless. */
  async function transmit(p) {
    setPendingStatus(p, "pending");
    try {
      const sent = await request("send_message", {
        conversation_id: p.conversationId,
        content: p.content,
        client_msg_id: p.clientMsgId,
      });
      state.pending.delete(p.clientMsgId);
      pendingNode(p)?.remove();
      addMessage(toMessage({ ...sent, sender_id: state.me.id, content: p.content }), { live: true });
      renderConversationList();
    } catch (err) {
      if (err instanceof RequestError) {
        setPendingStatus(p, "failed", `Not sent: ${err.message}`);
      } else {
        // No answer (disconnected or timed out): it may or may not be stored. Resent on reconnect.
        setPendingStatus(p, "unconfirmed", `Not confirmed yet (${err.message}); it is resent when the connection is back`);
      }
    }
  }

  function pendingNode(p) {
    return $("message-list").querySelector(`[data-client-msg-id="${p.clientMsgId}"]`);
  }

  function renderPending(p) {
    if (state.openId !== p.conversationId || pendingNode(p)) return;
    const retry = el("button", { type: "button", className: "retry", text: "Retry", hidden: true });
    retry.addEventListener("click", () => transmit(p));
    $("message-list").append(
      el(
        "li",
        { className: "msg mine pending", dataset: { clientMsgId: p.clientMsgId } },
        el("div", { className: "content", text: p.content }),
        el("div", { className: "why", hidden: true }),
        el("div", { className: "meta" }, el("span", { className: "ticks", dataset: { status: "pending" }, text: "🕓" }), retry),
      ),
    );
    setPendingStatus(p, p.status, p.reason);
  }

  function setPendingStatus(p, status, reason) {
    p.status = status;
    p.reason = reason;
    const node = pendingNode(p);
    if (!node) return;
    const ticks = node.querySelector(".ticks");
    ticks.dataset.status = status;
    ticks.textContent = status === "pending" ? "🕓" : "⚠";
    ticks.title = status;
    const why = node.querySelector(".why");
    why.textContent = reason ?? "";
    show(why, Boolean(reason));
    show(node.querySelector(".retry"), status === "failed" || status === "unconfirmed");
  }

  function bindNewChat() {
    const form = $("new-chat-form");
    $("new-chat-btn").addEventListener("click", () => {
      show($("new-group-form"), false);
      show(form, form.hidden);
      if (!form.hidden) $("new-chat-user").focus();
    });
    form.querySelector(".cancel").addEventListener("click", () => show(form, false));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const toUserId = Number($("new-chat-user").value);
      const content = $("new-chat-text").value;
      if (!content.trim()) return;
      try {
        const sent = await request("send_message", {
          to_user_id: toUserId,
          content,
          client_msg_id: newClientMsgId(),
        });
        form.reset();
        show(form, false);
        await refreshConversations();
        await openConversation(sent.conversation_id);
      } catch (err) {
        if (!(err instanceof RequestError)) reportFailure("Sending the message", err);
        // A refusal is on screen already: the server's `error` event.
      }
    });
  }

  // ---------------------------------------------------------------- typing

  function typingNow() {
    const conversationId = state.openId;
    if (!conversationId || !state.socket?.connected) return;
    const now = Date.now();
    if (state.typingConversation !== conversationId || now - state.typingSentAt > TYPING_REPEAT_MS) {
      state.typingConversation = conversationId;
      state.typingSentAt = now;
      state.socket.emit("typing", { conversation_id: conversationId, is_typing: true });
    }
    clearTimeout(state.typingIdleTimer);
    state.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping({ tell = true } = {}) {
    clearTimeout(state.typingIdleTimer);
    const conversationId = state.typingConversation;
    state.typingConversation = null;
    state.typingSentAt = 0;
    if (tell && conversationId && state.socket?.connected) {
      state.socket.emit("typing", { conversation_id: conversationId, is_typing: false });
    }
  }

  function onTyping({ conversation_id, user_id, is_typing }) {
    if (is_typing) {
      let typers = state.typing.get(conversation_id);
      if (!typers) state.typing.set(conversation_id, (typers = new Map()));
      clearTimeout(typers.get(user_id));
      typers.set(user_id, setTimeout(() => clearTyping(conversation_id, user_id), TYPING_SHOW_MS));
    } else {
      clearTyping(conversation_id, user_id);
      return;
    }
    renderTypingLine();
    renderConversationList();
  }

  function clearTyping(conversationId, userId) {
    const typers = state.typing.get(conversationId);
    if (!typers?.has(userId)) return;
    clearTimeout(typers.get(userId));
    typers.delete(userId);
    renderTypingLine();
    renderConversationList();
  }

  function clearAllTyping() {
    for (const typers of state.typing.values()) for (const timer of typers.values()) clearTimeout(timer);
    state.typing.clear();
    renderTypingLine();
    if (state.me) renderConversationList();
  }

  function renderTypingLine() {
    const typers = [...(state.typing.get(state.openId)?.keys() ?? [])];
    $("typing-line").textContent = typers.length
      ? `${typers.map(userLabel).join(", ")} ${typers.length === 1 ? "is" : "are"} typing…`
      : "";
  }

  // ---------------------------------------------------------------- groups

  function bindGroups() {
    const form = $("new-group-form");
    $("new-group-btn").addEventListener("click", () => {
      show($("new-chat-form"), false);
      show(form, form.hidden);
      if (!form.hidden) $("new-group-name").focus();
    });
    form.querySelector(".cancel").addEventListener("click", () => show(form, false));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const body = { name: $("new-group-name").value, member_ids: parseIds($("new-group-members").value) };
        const description = $("new-group-description").value;
        if (description.trim()) body.description = description;
        const { group } = await api("POST", "api/groups", body);
        form.reset();
        show(form, false);
        await refreshConversations();
        await openConversation(group.conversation_id);
      } catch (err) {
        reportFailure("Creating the group", err);
      }
    });

    $("members-btn").addEventListener("click", async () => {
      const panel = $("group-panel");
      if (!panel.hidden) {
        show(panel, false);
        state.group = null;
        $("members-btn").setAttribute("aria-expanded", "false");
        return;
      }
      await loadGroupPanel(state.openId);
    });
    $("group-edit-form").addEventListener("submit", (e) => {
      e.preventDefault();
      groupAction("Saving the group", "PATCH", "", {
        name: $("group-name").value,
        description: $("group-description").value,
      });
    });
    $("add-members-form").addEventListener("submit", (e) => {
      e.preventDefault();
      let ids;
      try {
        ids = parseIds($("add-members-input").value);
      } catch (err) {
        reportFailure("Adding members", err);
        return;
      }
      groupAction("Adding members", "POST", "/members", { user_ids: ids }).then((ok) => {
        if (ok) $("add-members-input").value = "";
      });
    });
    // Two clicks rather than confirm(): the page raises no dialogs at all.
    let leaveArmed = null;
    $("leave-btn").addEventListener("click", async () => {
      const group = state.group;
      const button = $("leave-btn");
      if (!group) return;
      if (leaveArmed === null) {
        button.textContent = "Click again to leave";
        leaveArmed = setTimeout(() => {
          leaveArmed = null;
          button.textContent = "Leave group";
        }, 4_000);
        return;
      }
      clearTimeout(leaveArmed);
      leaveArmed = null;
      button.textContent = "Leave group";
      try {
        await api("POST", `api/groups/${group.conversation_id}/leave`);
        state.conversations.delete(group.conversation_id);
        conversationGone(group.conversation_id);
        renderConversationList();
      } catch (err) {
        reportFailure("Leaving the group", err);
      }
    });
  }

  async function loadGroupPanel(conversationId) {
    try {
      const { group } = await api("GET", `api/groups/${conversationId}`);
      if (state.openId !== conversationId) return;
      state.group = group;
      await loadMemberPresence(group);
    } catch (err) {
      reportFailure("Loading the group", err);
      return;
    }
    $("group-name").value = state.group.name;
    $("group-description").value = state.group.description ?? "";
    show($("group-panel"), true);
    $("members-btn").setAttribute("aria-expanded", "true");
    renderGroupPanel();
  }

  async function loadMemberPresence(group) {
    const ids = group.members.map((m) => m.user_id).filter((id) => id !== state.me.id);
    if (!ids.length) return;
    try {
      const { users } = await api("GET", `api/presence?user_ids=${ids.slice(0, 500).join(",")}`);
      for (const u of users) {
        const member = group.members.find((m) => m.user_id === u.user_id);
        if (member) Object.assign(member, { online: u.online, last_seen: u.last_seen });
      }
    } catch (err) {
      reportFailure("Loading who is online", err);
    }
  }

  /** Runs one member-management request; the panel is redrawn from the group it answers. */
  async function groupAction(doing, method, suffix, body) {
    const group = state.group;
    if (!group) return false;
    try {
      const answer = await api(method, `api/groups/${group.conversation_id}${suffix}`, body);
      if (answer?.group) {
        state.group = answer.group;
        await loadMemberPresence(state.group);
        renderGroupPanel();
      }
      refreshConversationsSoon();
      return true;
    } catch (err) {
      reportFailure(doing, err);
      return false;
    }
  }

  function renderGroupPanel() {
    const group = state.group;
    if (!group) return;
    const myRole = group.members.find((m) => m.user_id === state.me.id)?.role;
    const manager = myRole === "owner" || myRole === "admin";
    show($("group-edit-form"), manager);
    show($("add-members-form"), manager);
    const items = group.members.map((m) => {
      const self = m.user_id === state.me.id;
      const who = el(
        "span",
        { className: "who" },
        el("span", { className: `dot${self || m.online ? " online" : ""}` }),
        self ? "You" : userLabel(m.user_id),
        " ",
        el("span", { className: "role", text: m.role }),
        !self && !m.online && m.last_seen
          ? el("span", { className: "role", text: ` · last seen ${formatTime(m.last_seen)}` })
          : null,
      );
      const actions = [];
      const act = (label, doing, method, body, className) => {
        const b = el("button", { type: "button", text: label, className });
        b.addEventListener("click", () => groupAction(doing, method, `/members/${m.user_id}`, body));
        actions.push(b);
      };
      if (!self && myRole === "owner") {
        if (m.role === "member") act("Make admin", "Promoting", "PATCH", { role: "admin" });
        if (m.role === "admin") act("Make member", "Demoting", "PATCH", { role: "member" });
        act("Make owner", "Handing over ownership", "PATCH", { role: "owner" });
      }
      if (!self && (myRole === "owner" || (myRole === "admin" && m.role === "member"))) {
        act("Remove", "Removing the member", "DELETE", undefined, "danger");
      }
      return el("li", { dataset: { userId: m.user_id, role: m.role } }, who, ...actions);
    });
    $("member-list").replaceChildren(...items);
  }

  function onGroupEvent(event, p) {
    const mine = p.user_id === state.me.id;
    if ((event === "member_removed" || event === "member_left") && mine) {
      const c = state.conversations.get(p.conversation_id);
      if (event === "member_removed" && p.actor_id !== state.me.id) {
        notify(`You were removed from the group “${c?.name ?? p.conversation_id}” by ${userLabel(p.actor_id)}.`, {
          kind: "info",
        });
      }
      state.conversations.delete(p.conversation_id);
      conversationGone(p.conversation_id);
    }
    if (state.group?.conversation_id === p.conversation_id && state.openId === p.conversation_id) {
      loadGroupPanel(p.conversation_id);
    }
    refreshConversationsSoon();
  }

  // ---------------------------------------------------------------- start

  function bindNavigation() {
    $("back-btn").addEventListener("click", closeConversation);
    $("older-btn").addEventListener("click", loadOlder);
    $("history").addEventListener("scroll", () => {
      if ($("history").scrollTop < 40) loadOlder();
    });
    document.addEventListener("visibilitychange", markOpenRead);
    window.addEventListener("focus", markOpenRead);
  }

  async function start() {
    bindAuthForms();
    bindConnectionButtons();
    bindNavigation();
    bindComposer();
    bindNewChat();
    bindGroups();
    if (typeof io !== "function") {
      notify("The Socket.IO client script (static/socket.io.min.js) did not load.");
      return;
    }
    if (location.protocol === "file:") {
      notify("Open this page from the server (e.g. http://127.0.0.1:5000/), not as a file.");
    }
    const token = storedToken();
    if (!token) {
      show($("auth-view"), true);
      return;
    }
    state.token = token;
    try {
      const user = await api("GET", "api/me");
      await signIn(token, user);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) reportFailure("Restoring your session", err);
      forgetToken();
      state.token = null;
      show($("auth-view"), true);
    }
  }

  start();
})();
