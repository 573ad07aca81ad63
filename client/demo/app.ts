// The demo chat page served at GET / (HTTP.md, "Demo page"): built only on the
// SDK's public API. It connects on load and joins `lobby`; other rooms on
// demand. A `?token=<jwt>` in the page's URL is passed on when the server has
// authentication on. Every text is set with textContent (no HTML injection).
import { Roomcast, type Room, type RoomMessage } from "../src/index.js";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} missing`);
  return el as T;
};

const wsPath = document.body.dataset["wsPath"] ?? "/ws";
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${wsPath}`;
const pageToken = new URLSearchParams(location.search).get("token");

const client = new Roomcast(wsUrl, {
  ...(pageToken === null ? {} : { getToken: () => pageToken }),
});
(window as unknown as { roomcast: Roomcast }).roomcast = client; // for the console

const views = new Map<string, HTMLOListElement>();
let current: Room | undefined;

function log(text: string): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(li);
}

function notice(room: string, text: string): void {
  const li = document.createElement("li");
  li.className = "notice";
  li.textContent = text;
  viewOf(room).append(li);
}

function viewOf(room: string): HTMLOListElement {
  let ol = views.get(room);
  if (ol === undefined) {
    ol = document.createElement("ol");
    ol.className = "messages";
    ol.dataset["room"] = room;
    ol.hidden = true;
    $("room-views").append(ol);
    views.set(room, ol);
  }
  return ol;
}

function show(message: RoomMessage): void {
  const ol = viewOf(message.room);
  const li = document.createElement("li");
  li.dataset["offset"] = message.offset.toString();
  const offset = document.createElement("span");
  offset.className = "offset";
  offset.textContent = `#${message.offset}`;
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = message.own ? "me" : (message.userId ?? message.senderId.slice(0, 6));
  const content = document.createElement("span");
  content.className = "content";
  content.textContent = message.content;
  li.append(offset, sender, content);
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4;
  ol.append(li);
  if (atBottom) ol.scrollTop = ol.scrollHeight;
}

function renderPresence(): void {
  const ul = $("presence");
  ul.replaceChildren();
  const members = current?.presence ?? [];
  for (const m of members) {
    const li = document.createElement("li");
    const me = m.memberId === client.session?.memberId ? " (me)" : "";
    li.textContent = `${m.userId ?? m.memberId.slice(0, 8)}${me}`;
    ul.append(li);
  }
  if (members.length === 0) {
    const li = document.createElement("li");
    li.textContent = "(no presence from the server)";
    ul.append(li);
  }
}

function renderRooms(): void {
  const div = $("rooms");
  div.replaceChildren();
  for (const id of views.keys()) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = id;
    button.setAttribute("aria-current", String(id === current?.id));
    button.addEventListener("click", () => select(id));
    div.append(button);
  }
}

function renderPending(): void {
  const n = current?.pendingCount ?? 0;
  $("pending").textContent = n === 0 ? "" : `${n} waiting for the server's ack`;
}

function select(id: string): void {
  const room = client.room(id, { presence: true });
  if (!views.has(id) || room !== current) wire(room);
  current = room;
  for (const [rid, ol] of views) ol.hidden = rid !== id;
  $("room-title").textContent = id;
  renderRooms();
  renderPresence();
  renderPending();
}

const wired = new WeakSet<Room>();
function wire(room: Room): void {
  viewOf(room.id);
  if (wired.has(room)) return;
  wired.add(room);
  room.on("message", show);
  room.on("joined", (e) => {
    $("room-title").dataset["joined"] = "true";
    document.body.dataset[`joined_${room.id}`] = "true";
    log(`${room.id}: joined at offset ${e.offset} (recovered: ${e.recovered})`);
  });
  room.on("gap", (e) =>
    notice(
      room.id,
      `messages after #${e.after} could not be recovered${e.epochChanged ? " (history restarted)" : ""}`,
    ),
  );
  room.on("presence", () => {
    if (room === current) renderPresence();
  });
  room.on("error", (err) => log(`${room.id}: ${err.code} ${err.message}`));
}

client.on("state", (e) => {
  const el = $("state");
  el.dataset["state"] = e.state;
  el.textContent =
    e.state === "reconnecting"
      ? `reconnecting in ${Math.round((e.delayMs ?? 0) / 100) / 10}s`
      : e.state;
  if (e.code !== undefined) log(`${e.state} (close ${e.code}${e.reason ? ` ${e.reason}` : ""})`);
});
client.on("session", (s) => {
  const el = $("session");
  el.dataset["resumed"] = String(s.resumed);
  el.dataset["memberId"] = s.memberId;
  el.textContent = `member ${s.memberId.slice(0, 8)}${s.resumed ? " · resumed" : ""}`;
  log(s.resumed ? "session resumed" : "new session");
});
client.on("error", (err) => log(`error ${err.code}: ${err.message}`));

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("room-input");
  const id = input.value.trim();
  if (id !== "") select(id);
  input.value = "";
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("message-input");
  const text = input.value;
  if (text === "" || current === undefined) return;
  input.value = "";
  const room = current;
  room.publish(text).then(
    () => renderPending(),
    (err: Error) => {
      log(`publish failed: ${err.message}`);
      renderPending();
    },
  );
  renderPending();
});

select("lobby");
