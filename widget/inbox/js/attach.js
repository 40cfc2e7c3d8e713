// Files attached to a reply. Each chosen file is uploaded at once (POST /api/attachments, the
// raw bytes with the file's type) so type and size problems show while the agent still writes;
// the hub answers with a token the reply names. Chips list the files with a remove button.
import { $, fmtBytes, h } from "./dom.js";

async function upload(file) {
  const response = await fetch(`/api/attachments?filename=${encodeURIComponent(file.name)}`, {
    method: "POST",
    body: file,
    credentials: "same-origin",
    headers: {
      "Content-Type": file.type || "application/octet-stream",
      "X-Requested-With": "contacthub-inbox",
      Accept: "application/json",
    },
  });
  const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((data && data.message) || `Upload failed (HTTP ${response.status})`);
  return data;
}

export class ReplyFiles {
  constructor(view) {
    this.view = view;
    this.files = []; // {id, file, status: "uploading"|"ready"|"failed", token, promise}
    this.seq = 0;
    this.input = $("#composer-file");
    this.button = $("#attach-button");
    this.list = $("#composer-files");
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      for (const file of this.input.files) this.add(file);
      this.input.value = "";
    });
  }

  add(file) {
    const entry = { id: ++this.seq, file, status: "uploading", token: null };
    entry.promise = upload(file).then(
      (out) => {
        entry.status = "ready";
        entry.token = out.token;
        this.render();
      },
      (err) => {
        this.files = this.files.filter((f) => f !== entry);
        this.render();
        $("#composer-error").textContent = err.message;
        this.view.app.announce(err.message, true);
      },
    );
    this.files.push(entry);
    $("#composer-error").textContent = "";
    this.render();
  }

  render() {
    this.list.replaceChildren(
      ...this.files.map((f) =>
        h(
          "li",
          { class: `file-chip ${f.status}`, dataset: { status: f.status } },
          h("span", { class: "name" }, f.file.name),
          h("span", { class: "muted" }, ` ${f.status === "uploading" ? "uploading…" : fmtBytes(f.file.size)}`),
          h("button", {
            type: "button",
            class: "ghost",
            "aria-label": `Remove ${f.file.name}`,
            onclick: () => {
              this.files = this.files.filter((x) => x !== f);
              this.render();
              this.view.text.focus();
            },
          }, "×"),
        ),
      ),
    );
    this.list.hidden = this.enabled === false || !this.files.length;
  }

  /** Wait for running uploads; the tokens of every file that made it. */
  async tokens() {
    await Promise.all(this.files.map((f) => f.promise));
    return this.files.filter((f) => f.status === "ready").map((f) => f.token);
  }

  get count() {
    return this.files.length;
  }

  clear() {
    this.files = [];
    this.render();
  }

  /** Notes carry no files and calls have no reply: hide the files there (kept for the reply). */
  setEnabled(enabled) {
    this.enabled = enabled;
    this.button.hidden = !enabled;
    this.list.hidden = !enabled || !this.files.length;
  }
}
