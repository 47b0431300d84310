// Card preview behaviour. No dependencies, no network calls: accepting a
// suggestion or dismissing a card only shows, on the page, what an EHR would do.
"use strict";

(function () {
  function setPressed(button, pressed) {
    button.setAttribute("aria-pressed", pressed ? "true" : "false");
    var panel = document.getElementById(button.getAttribute("aria-controls"));
    if (panel) {
      panel.hidden = !pressed;
    }
  }

  function announce(text) {
    var status = document.getElementById("selection-status");
    if (status) {
      status.textContent = text;
    }
  }

  function initSuggestions() {
    var buttons = document.querySelectorAll("button.suggestion");
    Array.prototype.forEach.call(buttons, function (button) {
      // The drafts are visible without JavaScript; with it they open on demand.
      setPressed(button, false);
      button.addEventListener("click", function () {
        var card = button.closest("article.card");
        var pressed = button.getAttribute("aria-pressed") !== "true";
        // CDS Hooks selectionBehavior "at-most-one": choosing one clears the others.
        if (pressed && card && card.getAttribute("data-selection") === "at-most-one") {
          Array.prototype.forEach.call(card.querySelectorAll("button.suggestion"), function (other) {
            if (other !== button) {
              setPressed(other, false);
            }
          });
        }
        setPressed(button, pressed);
        announce((pressed ? "Selected: " : "Cleared: ") + button.textContent.trim());
      });
    });
  }

  function initDismiss() {
    var forms = document.querySelectorAll("form.dismiss");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var select = form.querySelector("select");
        var out = form.querySelector(".dismissed");
        var card = document.getElementById(form.getAttribute("data-card"));
        var reason = select ? select.options[select.selectedIndex].text : "";
        if (out) {
          out.textContent = "Dismissed with reason \u201c" + reason +
            "\u201d. An EHR would send this as overrideReason feedback; the preview sends nothing.";
        }
        if (card) {
          card.classList.add("dismissed-card");
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSuggestions();
    initDismiss();
  });
})();
