// The "Manage canned responses" dialog: every agent keeps personal responses here; supervisors
// and admins also edit the team's. The hub validates (unknown placeholders, shortcut form and
// uniqueness) and its message is shown next to the form.
import { api, get, post } from "./api.js";
import { $, CHANNEL_LABEL, h } from "./dom.js";

const CHANNELS = ["webchat", "email", "sms", "fax", "voice"];

export class CannedEditor {
  constructor(app, onChange) {
    this.app = app;
    this.onChange = onChange;
    this.editing = null;
    this.dialog = $("#canned-dialog");
    this.form = $("#canned-form");
    $("#canned-manage").addEventListener("click", () => this.open());
    $("#canned-close").addEventListener("click", () => this.dialog.close());
    $("#canned-new").addEventListener("click", () => this.edit(null));
    this.dialog.addEventListener("close", () => $("#canned-manage").focus());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("#canned-channels").append(
      ...CHANNELS.map((c) => h("label", {}, h("input", { type: "checkbox", name: "canned-channel", value: c }), ` ${CHANNEL_LABEL[c]}`)),
    );
  }

  get manager() {
    return ["supervisor", "admin"].includes(this.app.me.role);
  }

  async open() {
    $("#canned-scope-set").hidden = !this.manager;
    await this.reload();
    this.edit(null);
    this.dialog.showModal();
    $("#canned-title").focus();
  }

  async reload() {
    const page = await get("/api/canned-responses");
    $("#canned-placeholders").textContent = `Placeholders: ${Object.keys(page.placeholders).map((p) => `{{${p}}}`).join(" ")}`;
    const list = $("#canned-manage-list");
    list.replaceChildren(
      ...page.items.map((c) =>
        h(
          "li",
          { dataset: { id: c.id } },
          h("span", { class: "shortcut" }, `/${c.shortcut}`),
          h("span", { class: "title" }, c.title),
          h("span", { class: "tag" }, c.scope === "team" ? "team" : "mine"),
          c.editable ? h("button", { type: "button", class: "link", "aria-label": `Edit /${c.shortcut}`, onclick: () => this.edit(c) }, "Edit") : null,
          c.editable ? h("button", { type: "button", class: "link", "aria-label": `Delete /${c.shortcut}`, onclick: () => this.remove(c) }, "Delete") : null,
        ),
      ),
    );
    if (!page.items.length) list.append(h("li", { class: "muted" }, "No canned responses yet."));
  }

  edit(c) {
    this.editing = c;
    $("#canned-form-title").textContent = c ? `Edit /${c.shortcut}` : "New canned response";
    $("#canned-title").value = c ? c.title : "";
    $("#canned-shortcut").value = c ? c.shortcut : "";
    $("#canned-body").value = c ? c.body : "";
    for (const box of this.form.querySelectorAll("input[name=canned-channel]")) box.checked = Boolean(c && c.channels.includes(box.value));
    const scope = c ? c.scope : "personal";
    for (const radio of this.form.querySelectorAll("input[name=canned-scope]")) {
      radio.checked = radio.value === scope;
      radio.disabled = Boolean(c); // the scope is fixed once created
    }
    $("#canned-form-error").textContent = "";
    if (c) $("#canned-title").focus();
  }

  async save() {
    const body = {
      title: $("#canned-title").value.trim(),
      shortcut: $("#canned-shortcut").value.trim().replace(/^\//, ""),
      body: $("#canned-body").value,
      channels: [...this.form.querySelectorAll("input[name=canned-channel]:checked")].map((b) => b.value),
    };
    try {
      if (this.editing) {
        await api("PATCH", `/api/canned-responses/${encodeURIComponent(this.editing.id)}`, body);
      } else {
        const scope = this.form.querySelector("input[name=canned-scope]:checked");
        await post("/api/canned-responses", { ...body, scope: this.manager && scope ? scope.value : "personal" });
      }
      this.app.announce(`Saved /${body.shortcut}`, false);
      await this.reload();
      this.edit(null);
      await this.onChange();
    } catch (err) {
      $("#canned-form-error").textContent = err.message;
    }
  }

  async remove(c) {
    try {
      await api("DELETE", `/api/canned-responses/${encodeURIComponent(c.id)}`);
      this.app.announce(`Deleted /${c.shortcut}`, false);
      await this.reload();
      if (this.editing && this.editing.id === c.id) this.edit(null);
      await this.onChange();
    } catch (err) {
      $("#canned-form-error").textContent = err.message;
    }
  }
}
