// Canned responses in the composer. Typing "/" + a shortcut at the start of a word opens a
// suggestion list under the reply box (arrow keys move, Enter or Tab insert, Esc closes); the
// "Canned" button opens the same list with a search field. The hub renders each response for the
// open conversation (GET /api/canned-responses?conversation=), so what is inserted already has
// the contact's and agent's names in it; the agent edits it before sending.
import { ApiError, get, query } from "./api.js";
import { CannedEditor } from "./cannededit.js";
import { $, h } from "./dom.js";

const TRIGGER = /(^|\s)\/([a-z0-9_-]*)$/i;

export class CannedPicker {
  constructor(view) {
    this.view = view;
    this.text = view.text;
    this.items = [];
    this.shown = [];
    this.active = -1;
    this.source = null; // "slash" (typing in the reply box) or "button" (search field)
    this.convId = null;
    this.button = $("#canned-button");
    this.popup = $("#canned-popup");
    this.search = $("#canned-search");
    this.list = $("#canned-list");
    this.hint = $("#canned-hint");
    this.text.setAttribute("aria-autocomplete", "list");
    this.text.setAttribute("aria-controls", "canned-list");
    this.text.setAttribute("aria-expanded", "false");
    this.text.addEventListener("input", () => this.onType());
    this.text.addEventListener("keydown", (e) => this.onKey(e, "slash"));
    this.text.addEventListener("blur", () => setTimeout(() => {
      if (this.source === "slash" && !this.popup.contains(document.activeElement)) this.close();
    }, 150));
    this.search.addEventListener("input", () => this.filter(this.search.value));
    this.search.addEventListener("keydown", (e) => this.onKey(e, "button"));
    this.button.addEventListener("click", () => (this.popup.hidden ? this.openSearch() : this.close(true)));
    this.editor = new CannedEditor(view.app, async () => {
      if (view.conv) await this.load(view.conv);
    });
  }

  /** Load (and render) the responses for the open conversation; quietly empty on failure. */
  async load(conv) {
    this.close();
    this.hint.textContent = "";
    this.convId = conv.id;
    try {
      const page = await get(`/api/canned-responses${query({ conversation: conv.id })}`);
      if (this.convId === conv.id) this.items = page.items;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.items = [];
    }
    this.button.disabled = !this.items.length;
    this.button.title = this.items.length ? "Insert a canned response (or type / and its shortcut)" : "No canned responses for this channel";
    if (document.activeElement === this.text) this.onType(); // "/" typed while loading
  }

  onType() {
    if (this.source === "button" || this.inserting) return;
    const before = this.text.value.slice(0, this.text.selectionStart);
    const m = TRIGGER.exec(before);
    if (!m || !this.items.length) return this.close();
    this.source = "slash";
    this.filter(m[2]);
  }

  filter(needle) {
    const n = needle.toLowerCase().replace(/^\//, "");
    this.shown = this.items.filter((c) => c.shortcut.startsWith(n) || (this.source === "button" && c.title.toLowerCase().includes(n)));
    this.active = this.shown.length ? 0 : -1;
    this.render();
  }

  openSearch() {
    if (!this.items.length) return;
    this.source = "button";
    this.search.hidden = false;
    this.search.value = "";
    this.filter("");
    this.search.focus();
  }

  render() {
    const owner = this.source === "button" ? this.search : this.text;
    this.list.replaceChildren(
      ...this.shown.map((c, i) =>
        h(
          "li",
          {
            id: `canned-opt-${i}`,
            role: "option",
            "aria-selected": String(i === this.active),
            class: i === this.active ? "active" : "",
            dataset: { shortcut: c.shortcut },
            onmousedown: (e) => e.preventDefault(), // keep focus in the text box
            onclick: () => this.choose(i),
          },
          h("span", { class: "shortcut" }, `/${c.shortcut}`),
          h("span", { class: "title" }, c.title),
          c.scope === "personal" ? h("span", { class: "tag" }, "mine") : null,
          h("span", { class: "preview muted" }, (c.rendered ?? c.body).slice(0, 90)),
        ),
      ),
    );
    if (!this.shown.length) this.list.append(h("li", { class: "muted empty-option", role: "presentation" }, "No matching canned response"));
    this.popup.hidden = false;
    this.text.setAttribute("aria-expanded", String(this.source === "slash"));
    this.search.setAttribute("aria-expanded", String(this.source === "button"));
    if (this.active >= 0) {
      owner.setAttribute("aria-activedescendant", `canned-opt-${this.active}`);
      this.list.children[this.active].scrollIntoView({ block: "nearest" });
    } else owner.removeAttribute("aria-activedescendant");
  }

  onKey(e, source) {
    if (this.popup.hidden || this.source !== source) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!this.shown.length) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.shown.length) % this.shown.length;
      this.render();
    } else if ((e.key === "Enter" || e.key === "Tab") && !e.ctrlKey && !e.metaKey && this.active >= 0) {
      e.preventDefault();
      e.stopImmediatePropagation();
      this.choose(this.active);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      this.close(true);
    }
  }

  choose(i) {
    const c = this.shown[i];
    if (!c) return;
    const text = c.rendered ?? c.body;
    const value = this.text.value;
    let start = this.text.selectionStart;
    const end = this.text.selectionEnd;
    if (this.source === "slash") {
      const m = TRIGGER.exec(value.slice(0, start));
      if (m) start -= m[2].length + 1; // replace "/shortcut" itself
    }
    this.text.value = value.slice(0, start) + text + value.slice(end);
    const caret = start + text.length;
    this.close();
    this.text.focus();
    this.text.setSelectionRange(caret, caret);
    this.inserting = true;
    this.text.dispatchEvent(new Event("input")); // SMS segment counter
    this.inserting = false;
    this.hint.textContent = c.missing && c.missing.length ? `No value for ${c.missing.map((m) => `{{${m}}}`).join(", ")}: check the text` : "";
    this.view.app.announce(`Inserted canned response ${c.title}`, false);
  }

  close(refocus = false) {
    const wasButton = this.source === "button";
    this.popup.hidden = true;
    this.search.hidden = true;
    this.source = null;
    this.shown = [];
    this.active = -1;
    this.text.setAttribute("aria-expanded", "false");
    this.text.removeAttribute("aria-activedescendant");
    this.search.removeAttribute("aria-activedescendant");
    if (refocus) (wasButton ? this.button : this.text).focus();
  }
}
