// Conversation Memory console: live view of an open conversation (server-sent
// events). No framework, no network beyond this server. The server renders
// every fragment (escaped); this script only places it.
"use strict";

(function () {
  function live(list) {
    var url = list.getAttribute("data-live");
    if (!url || !window.EventSource) {
      return;
    }
    var observations = document.getElementById("live-observations");
    var status = document.getElementById("conv-status");
    var source = new EventSource(url);
    function place(container, html, id, atTop) {
      if (!container || document.getElementById(id)) {
        return; // already shown
      }
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();
      var node = holder.content.firstElementChild;
      if (!node) {
        return;
      }
      if (atTop) {
        container.insertBefore(node, container.firstChild);
      } else {
        container.appendChild(node);
      }
    }
    source.addEventListener("msg", function (event) {
      place(list, event.data, "msg-" + event.lastEventId, false);
    });
    source.addEventListener("obs", function (event) {
      place(observations, event.data, "obs-" + event.lastEventId, true);
    });
    function stop(text) {
      source.close();
      if (status) {
        status.textContent = text;
        status.classList.remove("open");
      }
    }
    source.addEventListener("ended", function () { stop("ended"); });
    source.addEventListener("signedout", function () { stop("signed out: reload to sign in"); });
    document.body.setAttribute("data-live", "connected");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var lists = document.querySelectorAll("[data-live]");
    for (var i = 0; i < lists.length; i++) {
      live(lists[i]);
    }
  });
})();
