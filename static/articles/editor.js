/* The article body's Markdown editor: toolbar, shortcuts, a live preview rendered by the
 * server (the public page's own Markdown, sanitiser and templates), word count, autosave and a
 * guard against leaving with unsaved changes.
 *
 * The body stays a plain <textarea> (marked data-markdown-editor): the images' upload script
 * attaches to the same textarea when it carries data-image-upload-url, and may put its button
 * into the toolbar's slot ([data-editor-slot="images"]); the editor announces itself with the
 * event "markdown-editor:ready" on the textarea (detail: {toolbar, slot, insert(text)}).
 * No inline scripts or styles: the CSP allows neither.
 */
(function () {
  "use strict";

  var PREVIEW_DELAY = 500;
  var AUTOSAVE_DELAY = 4000;

  var ACTIONS = [
    {name: "bold", label: "F", title: "Fett (Strg+B)", key: "b", wrap: ["**", "**"]},
    {name: "italic", label: "K", title: "Kursiv (Strg+I)", key: "i", wrap: ["*", "*"]},
    {name: "heading", label: "H2", title: "Zwischenüberschrift (Strg+Alt+2)", key: "2", alt: true, line: "## "},
    {name: "link", label: "Link", title: "Link (Strg+K)", key: "k", link: true},
    {name: "quote", label: "„“", title: "Zitat (Strg+Alt+Q)", key: "q", alt: true, line: "> "},
    {name: "list", label: "•", title: "Liste (Strg+Alt+L)", key: "l", alt: true, line: "- "},
    {name: "numbered", label: "1.", title: "Nummerierte Liste (Strg+Alt+O)", key: "o", alt: true, line: "1. "},
    {name: "code", label: "</>", title: "Code (Strg+Alt+C)", key: "c", alt: true, wrap: ["`", "`"]}
  ];

  // Labels come from the server in the editor's language (data-editor-labels); the German
  // words here are only the fallback.
  var labels = {};
  function t(key, fallback, values) {
    var text = labels[key] || fallback;
    Object.keys(values || {}).forEach(function (name) {
      text = text.replace("%(" + name + ")s", values[name]);
    });
    return text;
  }

  function insert(textarea, text, selectStart, selectEnd) {
    textarea.focus();
    // execCommand keeps the browser's undo history; setRangeText is the fallback.
    if (!document.execCommand || !document.execCommand("insertText", false, text)) {
      textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
      textarea.dispatchEvent(new Event("input", {bubbles: true}));
    }
    if (selectStart !== undefined) {
      textarea.setSelectionRange(selectStart, selectEnd);
    }
  }

  function apply(textarea, action) {
    var start = textarea.selectionStart;
    var end = textarea.selectionEnd;
    var value = textarea.value;
    var selected = value.slice(start, end);
    if (action.wrap) {
      var text = selected || t(action.name, action.title).split(" ")[0];
      insert(textarea, action.wrap[0] + text + action.wrap[1],
        start + action.wrap[0].length, start + action.wrap[0].length + text.length);
    } else if (action.link) {
      var label = selected || t("link_text", "Linktext");
      insert(textarea, "[" + label + "](https://)",
        start + label.length + 3, start + label.length + 11);
    } else if (action.line) {
      var lineStart = value.lastIndexOf("\n", start - 1) + 1;
      textarea.setSelectionRange(lineStart, end);
      var lines = value.slice(lineStart, end).split("\n").map(function (line) {
        return action.line + line;
      }).join("\n");
      insert(textarea, lines);
    }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function setup(textarea) {
    labels = JSON.parse(textarea.getAttribute("data-editor-labels") || "{}");
    var form = textarea.form;
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    var articleId = textarea.getAttribute("data-article-id") || "";

    var shell = el("div", {"class": "md-editor"});
    var toolbar = el("div", {"class": "md-editor__toolbar", role: "toolbar", "aria-label": t("toolbar", "Formatierung")});
    ACTIONS.forEach(function (action) {
      var title = t(action.name, action.title);
      var button = el("button", {type: "button", title: title, "aria-label": title,
        "data-action": action.name, "class": "md-editor__button md-editor__button--" + action.name}, action.label);
      button.addEventListener("click", function () { apply(textarea, action); });
      toolbar.appendChild(button);
    });
    var slot = el("span", {"class": "md-editor__slot", "data-editor-slot": "images"});
    toolbar.appendChild(slot);
    var pagePreview = el("button", {type: "button", "class": "md-editor__button md-editor__page-preview",
      title: t("page_preview_title", "Ungespeicherte Fassung im Seitenlayout öffnen (nichts wird veröffentlicht)")},
      t("page_preview", "Vorschau im Seitenlayout"));
    toolbar.appendChild(pagePreview);

    var panes = el("div", {"class": "md-editor__panes"});
    var frame = el("iframe", {"class": "md-editor__preview", title: t("preview", "Vorschau"), sandbox: "allow-same-origin",
      "data-preview-frame": "1"});
    var status = el("p", {"class": "md-editor__status", "aria-live": "polite"});
    var counts = el("span", {"class": "md-editor__counts", "data-editor-counts": "1"});
    var saved = el("span", {"class": "md-editor__saved", "data-editor-saved": "1"});
    status.appendChild(counts);
    status.appendChild(saved);

    textarea.parentNode.insertBefore(shell, textarea);
    shell.appendChild(toolbar);
    shell.appendChild(panes);
    panes.appendChild(textarea);
    panes.appendChild(frame);
    shell.appendChild(status);

    // The preview frame holds the public page's stylesheet and its <main>; the server's HTML
    // goes into that <main> (no scripts can run in it: the frame is sandboxed without them).
    var css = textarea.getAttribute("data-site-css");
    frame.srcdoc = '<!doctype html><html lang="de"><head><meta charset="utf-8">' +
      '<link rel="stylesheet" href="' + css + '"></head><body class="editor-preview"><main id="main" class="wrap"></main></body></html>';

    function formData() {
      var data = new FormData(form);
      data.set("article_id", articleId);
      return data;
    }

    var previewTimer = null;
    var previewSeq = 0;
    function refreshPreview() {
      var seq = ++previewSeq;
      fetch(textarea.getAttribute("data-preview-url") + "?teil=main", {
        method: "POST", body: formData(), credentials: "same-origin",
        headers: {"X-CSRFToken": csrf ? csrf.value : ""}
      }).then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      }).then(function (result) {
        if (seq !== previewSeq) { return; }
        var main = frame.contentDocument && frame.contentDocument.getElementById("main");
        if (main) { main.innerHTML = result.html; }
        counts.textContent = t("words", "%(words)s Wörter", {words: result.words}) + " · " +
          (result.minutes ? t("minutes", "ca. %(minutes)s Min. Lesezeit", {minutes: result.minutes})
            : t("no_minutes", "keine Lesezeit"));
        textarea.setAttribute("data-preview-state", "ready");
      }).catch(function () {
        counts.textContent = t("preview_unavailable", "Vorschau nicht verfügbar");
      });
    }
    function schedulePreview() {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(refreshPreview, PREVIEW_DELAY);
    }

    // Unsaved changes: anything in the form that differs from what the server last holds.
    function snapshot() {
      var data = formData();
      data.delete("csrfmiddlewaretoken");
      return new URLSearchParams(data).toString();
    }
    var savedState = snapshot();
    var submitting = false;
    function dirty() { return !submitting && snapshot() !== savedState; }

    var autosaveTimer = null;
    var autosaving = false;
    function autosave() {
      if (autosaving || !dirty()) { return; }
      var title = form.querySelector("[name=title]");
      var slugField = form.querySelector("[name=slug]");
      if (!title || !title.value.trim() || !textarea.value.trim() || (slugField && !slugField.value.trim())) {
        saved.textContent = t("missing", "Noch nicht gesichert: Titel und Text fehlen");
        return;
      }
      autosaving = true;
      var state = snapshot();
      fetch(textarea.getAttribute("data-autosave-url"), {
        method: "POST", body: formData(), credentials: "same-origin",
        headers: {"X-CSRFToken": csrf ? csrf.value : ""}
      }).then(function (response) {
        return response.json().then(function (result) { return {ok: response.ok, result: result}; });
      }).then(function (answer) {
        var result = answer.result;
        if (!answer.ok) {
          var errors = Object.keys(result.errors || {}).map(function (name) {
            return result.errors[name].join(" ");
          }).join(" ");
          saved.textContent = t("not_saved", "Nicht gesichert: %(errors)s", {errors: errors});
          return;
        }
        savedState = state;
        if (!articleId) {
          // The first autosave created the draft: from now on this page edits it.
          articleId = String(result.article_id);
          textarea.setAttribute("data-article-id", articleId);
          textarea.setAttribute("data-autosave-url", result.autosave_url);
          history.replaceState(null, "", result.change_url);
        }
        saved.textContent = result.article_written
          ? t("draft_saved", "Entwurf gesichert %(at)s", {at: result.at})
          : t("changes_saved", "Änderungen gesichert (nicht veröffentlicht) %(at)s", {at: result.at});
        textarea.setAttribute("data-autosaved", result.at);
      }).catch(function () {
        saved.textContent = t("offline", "Nicht gesichert: keine Verbindung");
      }).then(function () { autosaving = false; });
    }
    function scheduleAutosave() {
      clearTimeout(autosaveTimer);
      autosaveTimer = setTimeout(autosave, AUTOSAVE_DELAY);
    }

    function changed() { schedulePreview(); scheduleAutosave(); }
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function () { submitting = true; });
    window.addEventListener("beforeunload", function (event) {
      if (dirty()) {
        event.preventDefault();
        event.returnValue = "";
      }
    });

    textarea.addEventListener("keydown", function (event) {
      if (!(event.ctrlKey || event.metaKey)) { return; }
      var key = event.key.toLowerCase();
      ACTIONS.forEach(function (action) {
        if (action.key === key && !!action.alt === event.altKey) {
          event.preventDefault();
          apply(textarea, action);
        }
      });
    });

    pagePreview.addEventListener("click", function () {
      // The whole form, posted to a new tab that shows it in the page layout; stored nowhere.
      var action = form.getAttribute("action");
      var target = form.getAttribute("target");
      var hidden = el("input", {type: "hidden", name: "article_id", value: articleId});
      form.appendChild(hidden);
      form.setAttribute("action", textarea.getAttribute("data-preview-url"));
      form.setAttribute("target", "_blank");
      HTMLFormElement.prototype.submit.call(form);
      form.removeChild(hidden);
      if (action === null) { form.removeAttribute("action"); } else { form.setAttribute("action", action); }
      if (target === null) { form.removeAttribute("target"); } else { form.setAttribute("target", target); }
    });

    frame.addEventListener("load", refreshPreview);
    textarea.dispatchEvent(new CustomEvent("markdown-editor:ready", {
      bubbles: true,
      detail: {toolbar: toolbar, slot: slot, insert: function (text) { insert(textarea, text); }}
    }));
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-markdown-editor]"), setup);
  });
}());
