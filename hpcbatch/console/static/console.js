// The hpcbatch console's one script. Every page and every action works without it; it keeps
// a page's live region current (server-sent events from /console/live/...) and follows a job's
// log as it grows. See docs/console.md.
(function () {
  "use strict";
  var LOG_KEEP = 2 * 1024 * 1024; // characters of a log kept on the page; the rest: "Whole log"
  var connection = document.getElementById("connection");

  function say(text) {
    if (!connection) return;
    connection.hidden = !text;
    connection.textContent = text || "";
  }

  // Make `old` look like `fresh` while touching only what differs, so focus, selection and
  // scroll positions survive an update (a whole replacement would drop them).
  function morph(old, fresh) {
    if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName ||
        (old.id || "") !== (fresh.id || "")) {
      old.replaceWith(fresh.cloneNode(true));
      return;
    }
    if (old.nodeType === Node.TEXT_NODE || old.nodeType === Node.COMMENT_NODE) {
      if (old.data !== fresh.data) old.data = fresh.data;
      return;
    }
    if (old.isEqualNode(fresh)) return;
    var i;
    for (i = old.attributes.length - 1; i >= 0; i--) {
      var name = old.attributes[i].name;
      if (!fresh.hasAttribute(name)) old.removeAttribute(name);
    }
    for (i = 0; i < fresh.attributes.length; i++) {
      var attr = fresh.attributes[i];
      if (old.getAttribute(attr.name) !== attr.value) old.setAttribute(attr.name, attr.value);
    }
    morphChildren(old, fresh);
  }

  function morphChildren(old, fresh) {
    var olds = Array.prototype.slice.call(old.childNodes);
    var news = Array.prototype.slice.call(fresh.childNodes);
    if (olds.length !== news.length) {
      old.replaceChildren.apply(old, news.map(function (n) { return n.cloneNode(true); }));
      return;
    }
    for (var i = 0; i < news.length; i++) morph(olds[i], news[i]);
  }

  function follow(url, onEvent) {
    var source = new EventSource(url);
    Object.keys(onEvent).forEach(function (name) {
      source.addEventListener(name, function (e) { onEvent[name](e, source); });
    });
    source.onopen = function () { say(""); };
    source.onerror = function () {
      say("Lost the head; reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(function () { follow(url, onEvent); }, 2000);
      }
    };
    return source;
  }

  var live = document.getElementById("live");
  if (live && live.dataset.live && window.EventSource) {
    follow(live.dataset.live, {
      region: function (e) {
        say("");
        var fresh = document.createElement("template");
        fresh.innerHTML = e.data;
        morphChildren(live, fresh.content);
      }
    });
  }

  var log = document.getElementById("log");
  if (log && log.dataset.stream && window.EventSource) {
    var state = document.getElementById("log-state");
    var box = document.getElementById("follow");
    var kept = 0;
    var show = function (text) { if (state) state.textContent = text; };
    var append = function (text) {
      log.appendChild(document.createTextNode(text));
      kept += text.length;
      while (kept > LOG_KEEP && log.firstChild) {
        var first = log.firstChild;
        kept -= first.data ? first.data.length : 0;
        log.removeChild(first);
        show("Showing the end of the log: the whole log is behind the link");
      }
      if (!box || box.checked) log.scrollTop = log.scrollHeight;
    };
    follow(log.dataset.stream, {
      attempt: function (e) {
        if (kept) append("\n--- attempt " + e.data + " ---\n");
        show("Attempt " + e.data);
      },
      log: function (e) { append(JSON.parse(e.data)); },
      problem: function (e) { show(e.data); },
      end: function (e, source) { show("The job has ended; this is its whole log."); source.close(); }
    });
  }
})();
