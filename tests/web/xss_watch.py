"""Watching a Chromium page for any sign that a vector ran, was injected or reached out.

A vector that runs calls one of the functions replaced here before any page script (alert, confirm,
prompt, print, open, fetch, XMLHttpRequest) or opens a dialog; a vector that was injected but
stopped by the Content Security Policy shows as a ``securitypolicyviolation`` event or as Chromium's
console message about it; one that reaches out asks for an address other than the desk's. The DOM
check finds markup a vector added even when nothing fired (an event handler attribute, a script, a
frame).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

INIT_SCRIPT = """(() => {
  const hits = [];
  Object.defineProperty(window, "__xss", { value: hits });
  const note = (name, args) => hits.push(name + "(" + Array.from(args).join(",").slice(0, 100) + ")");
  for (const name of ["alert", "confirm", "prompt", "print", "open"]) {
    window[name] = function () { note(name, arguments); };
  }
  // No desk page fetches anything as it loads: any call is a vector's (still made, so that a remote
  // address is seen by the route too). eval is left alone: Playwright's own evaluate calls it; a vector
  // that evals code shows by what that code calls.
  const original = window.fetch;
  window.fetch = function () { note("fetch", arguments); return original.apply(this, arguments); };
  const send = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function () { note("xhr", arguments); return send.apply(this, arguments); };
  document.addEventListener("securitypolicyviolation",
    (e) => hits.push("csp " + e.effectiveDirective + " " + e.blockedURI), true);
})();"""

# Markup no desk page has of its own, in the page and in the email's frame.
DOM_CHECK = """(isFrame) => {
  const found = [];
  const scriptUrl = /^(javascript|vbscript|data):/i;
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const a of el.attributes) {
      if (/^on/i.test(a.name)) found.push(`${tag}[${a.name}]`);
      if (["href", "src", "action", "formaction", "data", "xlink:href", "poster", "background"]
          .includes(a.name.toLowerCase())) {
        const value = a.value.replace(/[\\x00-\\x20]/g, "");
        if (scriptUrl.test(value) && !(tag === "img" && /^data:image\\//i.test(value)))
          found.push(`${tag}[${a.name}=${a.value.slice(0, 40)}]`);
      }
      if (a.name.toLowerCase() === "srcdoc") found.push(`${tag}[srcdoc]`);
    }
    if (tag === "script" && (isFrame || !/\\/static\\/desk\\.js$/.test(el.src))) found.push("script");
    if (["object", "embed", "base", "frame", "frameset", "portal", "applet"].includes(tag)) found.push(tag);
    if (tag === "iframe" && (isFrame || !(el.classList.contains("body") && el.hasAttribute("sandbox")
        && el.getAttribute("sandbox") === ""))) found.push("iframe");
    if (tag === "meta" && el.hasAttribute("http-equiv")) found.push("meta[http-equiv]");
    if (tag === "link" && !/\\/static\\/desk\\.css$/.test(el.href)) found.push("link");
    if (tag === "style" && !isFrame) found.push("style");
    if (tag === "svg" || tag === "math") found.push(tag);
  }
  if (isFrame && document.querySelectorAll("style").length !== 1) found.push("style");
  return found;
}"""

_CSP_CONSOLE = re.compile(r"Content Security Policy|Refused to|Blocked script execution|sandboxed", re.I)


@dataclass
class Watch:
    """Everything seen on the pages of one browser context; ``clean`` when nothing was."""

    hits: list[str] = field(default_factory=list)  # functions called, dialogs, CSP events
    remote: list[str] = field(default_factory=list)  # requests for any host but the desk's
    injected: list[str] = field(default_factory=list)  # foreign markup found in a page or frame
    console: list[str] = field(default_factory=list)  # CSP and sandbox messages of Chromium
    errors: list[str] = field(default_factory=list)  # uncaught script errors
    pages: int = 0
    frames: int = 0

    def attach(self, context) -> None:
        context.add_init_script(INIT_SCRIPT)
        context.route("**/*", self._route)
        context.on("page", self._page)

    def _page(self, page) -> None:
        page.on("dialog", lambda dialog: (self.hits.append(f"dialog {dialog.type}"), dialog.dismiss()))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)[:200]))

    def _console(self, message) -> None:
        if _CSP_CONSOLE.search(message.text):
            self.console.append(message.text[:300])

    def _route(self, route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.remote.append(route.request.url[:200])
            route.abort()

    def visit(self, page, url: str, where: str) -> None:
        """Open ``url``, wait for it and its frames, and record what they show."""
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, (url, response and response.status)
        assert page.url == url, f"{where}: the page went elsewhere: {page.url}"
        self.pages += 1
        for frame in page.frames:
            is_frame = frame is not page.main_frame
            self.frames += is_frame
            self.injected += [f"{where}: {found}" for found in frame.evaluate(DOM_CHECK, is_frame)]
            self.hits += [f"{where}: {hit}" for hit in frame.evaluate("() => window.__xss || []")]

    @property
    def clean(self) -> bool:
        return not (self.hits or self.remote or self.injected or self.console or self.errors)

    def summary(self) -> dict[str, list[str]]:
        return {
            name: values[:10]
            for name, values in (
                ("hits", self.hits),
                ("remote", self.remote),
                ("injected", self.injected),
                ("console", self.console),
                ("errors", self.errors),
            )
            if values
        }
