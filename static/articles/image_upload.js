// Image upload for admin textareas that carry data-image-upload-url: a button, paste and
// drag-and-drop send the picture to the media library (with the CSRF token and an alt text)
// and insert the Markdown snippet the server returns at the cursor. Nothing else is assumed
// about the page, so an editor that keeps the textarea in sync can listen to the
// "image-upload:inserted" event or simply keep using the textarea's value.
(function () {
  "use strict";

  function csrfToken(form) {
    var field = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || start;
    var before = textarea.value.slice(0, start);
    var after = textarea.value.slice(end);
    var lead = before && !/\n\n$/.test(before) ? (/\n$/.test(before) ? "\n" : "\n\n") : "";
    var tail = after && !/^\n/.test(after) ? "\n\n" : "";
    var snippet = lead + text + tail;
    textarea.setRangeText(snippet, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.dispatchEvent(
      new CustomEvent("image-upload:inserted", { bubbles: true, detail: { markdown: text } })
    );
  }

  function errorText(data) {
    if (!data || !data.errors) return "";
    var messages = [];
    Object.keys(data.errors).forEach(function (field) {
      data.errors[field].forEach(function (error) {
        messages.push(error.message);
      });
    });
    return messages.join(" ");
  }

  function attach(textarea) {
    var url = textarea.dataset.imageUploadUrl;
    var bar = document.createElement("div");
    bar.className = "image-upload";
    var alt = document.createElement("input");
    alt.type = "text";
    alt.className = "image-upload__alt vTextField";
    alt.maxLength = 300;
    alt.placeholder = textarea.dataset.imageUploadAltLabel || "";
    alt.setAttribute("aria-label", alt.placeholder);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button image-upload__button";
    button.textContent = textarea.dataset.imageUploadLabel || "Upload";
    var picker = document.createElement("input");
    picker.type = "file";
    picker.accept = "image/jpeg,image/png,image/gif,image/webp";
    picker.hidden = true;
    picker.className = "image-upload__file";
    var status = document.createElement("p");
    status.className = "image-upload__status";
    status.setAttribute("role", "status");
    status.textContent = textarea.dataset.imageUploadHint || "";
    bar.append(alt, button, picker, status);
    // Inside the Markdown editor (editor.js) the bar goes under its text and preview panes,
    // not between them; a plain textarea gets it right below.
    var panes = textarea.closest(".md-editor__panes");
    (panes || textarea).insertAdjacentElement("afterend", bar);

    function upload(file) {
      var altText = alt.value.trim();
      if (!altText) {
        altText = (window.prompt(alt.placeholder) || "").trim();
        if (!altText) {
          alt.focus();
          return;
        }
      }
      var body = new FormData();
      body.append("upload", file, file.name || "bild");
      body.append("alt_text", altText);
      status.textContent = textarea.dataset.imageUploadBusy || "…";
      bar.classList.add("image-upload--busy");
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(textarea.form), Accept: "application/json" },
      })
        .then(function (response) {
          return response
            .json()
            .catch(function () {
              return { errors: { upload: [{ message: response.status + " " + response.statusText }] } };
            })
            .then(function (data) {
              if (!response.ok) throw new Error(errorText(data) || String(response.status));
              return data;
            });
        })
        .then(function (data) {
          insertAtCursor(textarea, data.markdown);
          alt.value = "";
          status.textContent = textarea.dataset.imageUploadDone || "";
          bar.classList.remove("image-upload--error");
        })
        .catch(function (error) {
          status.textContent = (textarea.dataset.imageUploadFailed || "") + " " + error.message;
          bar.classList.add("image-upload--error");
        })
        .finally(function () {
          bar.classList.remove("image-upload--busy");
        });
    }

    function firstImage(items) {
      for (var i = 0; i < (items ? items.length : 0); i++) {
        var file = items[i].getAsFile ? items[i].getAsFile() : items[i];
        if (file && /^image\//.test(file.type)) return file;
      }
      return null;
    }

    button.addEventListener("click", function () {
      picker.click();
    });
    picker.addEventListener("change", function () {
      if (picker.files.length) upload(picker.files[0]);
      picker.value = "";
    });
    textarea.addEventListener("paste", function (event) {
      var file = firstImage(event.clipboardData && event.clipboardData.items);
      if (!file) return;
      event.preventDefault();
      upload(file);
    });
    textarea.addEventListener("dragover", function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
        event.preventDefault();
        textarea.classList.add("image-upload--target");
      }
    });
    textarea.addEventListener("dragleave", function () {
      textarea.classList.remove("image-upload--target");
    });
    textarea.addEventListener("drop", function (event) {
      textarea.classList.remove("image-upload--target");
      var file = firstImage(event.dataTransfer && event.dataTransfer.files);
      if (!file) return;
      event.preventDefault();
      textarea.focus();
      upload(file);
    });
  }

  function init() {
    document.querySelectorAll("textarea[data-image-upload-url]").forEach(function (textarea) {
      if (!textarea.dataset.imageUploadReady) {
        textarea.dataset.imageUploadReady = "1";
        attach(textarea);
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
