// The pre-chat and offline forms, built from the field specs the server sends in `session`.
import { h } from "./dom.js";
import { localized } from "./i18n.js";

function field(spec, kind, locale) {
  const id = `ch-${kind}-${spec.name}`;
  const auto = { name: "name", email: "email", tel: "tel" }[spec.type === "text" ? spec.name : spec.type];
  const attrs = { id, name: spec.name, required: spec.required, maxlength: String(spec.max_length),
    autocomplete: auto || "off" };
  let input;
  if (spec.type === "select") {
    input = h("select", attrs, h("option", { value: "", text: "—" }),
      spec.options.map((o) => h("option", { value: o, text: o })));
  } else if (spec.type === "textarea") {
    input = h("textarea", { ...attrs, rows: "3" });
  } else {
    input = h("input", { ...attrs, type: spec.type });
  }
  const text = localized(spec.label, locale, spec.name) + (spec.required ? " *" : "");
  return { spec, input, label: h("label", { class: "field", for: id }, text, input) };
}

// Fills `form`; on submit checks required fields (focusing the first one missing) and calls
// `submit(fields, text)`, where `text` is the offline message (undefined for the pre-chat form).
// `submit` rejects with the server's {code, message, field}: the named field gets the focus.
export function buildForm({ form, kind, specs, t, locale, maxText, submit, showError }) {
  const inputs = specs.map((spec) => field(spec, kind, locale));
  const items = [h("p", { text: t(kind === "prechat" ? "prechatIntro" : "offlineIntro") }), ...inputs.map((i) => i.label)];
  let message;
  if (kind === "offline") {
    message = h("textarea", { id: "ch-offline-text", rows: "4", required: true, maxlength: String(maxText) });
    items.push(h("label", { class: "field", for: "ch-offline-text" }, t("offlineMessage"), message));
  }
  items.push(h("button", { class: "primary", type: "submit", text: t(kind === "prechat" ? "start" : "offlineSend") }));
  form.replaceChildren(...items);
  form.onsubmit = async (e) => {
    e.preventDefault();
    const fields = {};
    for (const { spec, input } of inputs) {
      const value = input.value.trim();
      if (spec.required && !value) return showError({ message: t("required") }, input);
      if (value) fields[spec.name] = value;
    }
    if (message && !message.value.trim()) return showError({ message: t("required") }, message);
    try {
      await submit(fields, message && message.value);
    } catch (err) {
      const name = err && err.field && err.field.split(".").pop();
      showError(err, name && form.querySelector(`[name="${CSS.escape(name)}"]`));
    }
  };
}
