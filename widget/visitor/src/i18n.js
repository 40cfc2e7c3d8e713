// Localizable strings. Add a language by adding a table with the same keys; the widget picks
// data-locale on the script tag, else navigator.language, else English.
const STRINGS = {
  en: {
    open: "Open chat",
    close: "Close chat",
    title: "Chat with us",
    online: "We're online",
    offline: "We're away",
    prechatIntro: "Before we start, please tell us a little about you.",
    start: "Start chat",
    offlineIntro: "No one is available right now. Leave a message and we'll get back to you.",
    offlineMessage: "Your message",
    offlineSend: "Send message",
    offlineThanks: "Thanks! We received your message and will reply soon.",
    compose: "Type your message",
    send: "Send",
    attach: "Attach a file",
    you: "You",
    agent: "Agent",
    typing: "{name} is typing…",
    sending: "Sending…",
    sent: "Sent",
    delivered: "Delivered",
    read: "Read",
    failed: "Not sent",
    retry: "Retry",
    reconnecting: "Reconnecting…",
    unread: "{n} new messages",
    newMessage: "New message from {name}",
    fileTooLarge: "{name} is larger than {max}.",
    fileType: "{name}: this type of file is not accepted.",
    tooManyFiles: "At most {max} files per message.",
    required: "This field is required.",
    error: "Something went wrong: {message}",
    messages: "Messages",
    attachment: "Attachment: {name}",
  },
  fr: {
    open: "Ouvrir la discussion",
    close: "Fermer la discussion",
    title: "Discutons",
    online: "Nous sommes en ligne",
    offline: "Nous sommes absents",
    prechatIntro: "Avant de commencer, présentez-vous en quelques mots.",
    start: "Commencer",
    offlineIntro: "Personne n'est disponible pour le moment. Laissez un message, nous vous répondrons.",
    offlineMessage: "Votre message",
    offlineSend: "Envoyer le message",
    offlineThanks: "Merci ! Nous avons bien reçu votre message et vous répondrons bientôt.",
    compose: "Écrivez votre message",
    send: "Envoyer",
    attach: "Joindre un fichier",
    you: "Vous",
    agent: "Conseiller",
    typing: "{name} écrit…",
    sending: "Envoi…",
    sent: "Envoyé",
    delivered: "Distribué",
    read: "Lu",
    failed: "Non envoyé",
    retry: "Réessayer",
    reconnecting: "Reconnexion…",
    unread: "{n} nouveaux messages",
    newMessage: "Nouveau message de {name}",
    fileTooLarge: "{name} dépasse {max}.",
    fileType: "{name} : ce type de fichier n'est pas accepté.",
    tooManyFiles: "{max} fichiers au maximum par message.",
    required: "Ce champ est obligatoire.",
    error: "Une erreur est survenue : {message}",
    messages: "Messages",
    attachment: "Pièce jointe : {name}",
  },
};

export function pickLocale(requested, navigatorLanguages) {
  const candidates = [requested, ...(navigatorLanguages || [])].filter(Boolean);
  for (const tag of candidates) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "en";
}

export function translator(locale) {
  const table = STRINGS[locale] || STRINGS.en;
  return (key, params) => {
    let text = table[key] ?? STRINGS.en[key] ?? key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.replace(`{${name}}`, String(value));
    }
    return text;
  };
}

// A label configured per locale on the server ({en: "Name", fr: "Nom"}).
export function localized(labels, locale, fallback) {
  if (!labels) return fallback;
  return labels[locale] || labels.en || Object.values(labels)[0] || fallback;
}
