"""The rendered docsite (make docs, build/docs) as a reader's browser sees it.

One headless Chromium (Debian's ``chromium``), driven over the DevTools protocol, opens every page
of build/docs served by a local HTTP server, and reports what the page really holds after the
browser parsed it: the resolved targets of its links and of its resources (``src``, ``link
href``), its element ids, its headings and the requests that failed. The checks:

- every link inside the site reaches a page the server has (HTTP 200) and its ``#fragment`` an
  element id of that page; every resource of a page loads;
- no link or resource points outside the project: no ``file:`` URL, nothing of the machine
  (``/work/``, ``../shared``); links to other web sites are allowed and listed in
  build/docs-external-links.txt;
- every module page has its Synopsis, Parameters, Examples and Return Values; every role page an
  entry point section (with Synopsis, and Parameters when it has options) for each entry point of
  its meta/argument_specs.yml; the filter page its Synopsis, Input, Examples and Return Value;
- every guide of docs/docsite/extra-docs.yml is there with the title of its RST source;
- links into the project's GitHub repository (links.yml) name files of this tree;
- the collection's index page links to every module, role, filter and guide page.

``make docs-test`` builds the site then runs this file. Without build/docs, or without Chromium
(CI installs it: .ci/run), the tests fail and say so. LLMD_CHROMIUM names another browser binary.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("LLMD_DOCS_DIR", ROOT / "build" / "docs"))
COLLECTION = "collections/llmd/gke"
EXTERNAL_LIST = ROOT / "build" / "docs-external-links.txt"
# Strings a link or resource of a page must never hold: the machine's paths, the shared folder
# that a clone of the project does not have.
OUTSIDE = ("/work/", "../shared", "/shared/docs", "file:")
TIMEOUT = 30.0

# What the page holds once the browser has parsed it (resolved URLs: a.href, el.src).
PAGE_JS = r"""
(() => {
  const text = (el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('.headerlink').forEach((x) => x.remove());
    return copy.textContent.replace(/\s+/g, ' ').trim();
  };
  const links = [...document.querySelectorAll('a[href]')].map(
    (a) => ({url: a.href, raw: a.getAttribute('href')}));
  const resources = [...document.querySelectorAll('[src], link[href]')].map(
    (el) => ({url: el.src || el.href, raw: el.getAttribute('src') || el.getAttribute('href')}));
  const ids = [...document.querySelectorAll('[id]')].map((el) => el.id).concat(
    [...document.querySelectorAll('a[name]')].map((el) => el.getAttribute('name')));
  const headings = [...document.querySelectorAll('h1, h2, h3')].map(
    (h) => ({level: Number(h.tagName[1]), text: text(h)}));
  return {title: document.title, links, resources, ids, headings};
})()
"""


class DevTools:
    """A minimal DevTools protocol client: one browser websocket, flat sessions per target."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"no {method} within {TIMEOUT} s")

    def close(self) -> None:
        self.ws.close()


def find_chromium() -> str:
    for name in (os.environ.get("LLMD_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail(
        "Chromium is missing: the docsite test opens the pages in Debian's headless chromium "
        "(apt-get install chromium; .ci/run installs it) or the browser LLMD_CHROMIUM names",
        pytrace=False,
    )


@contextlib.contextmanager
def chromium() -> Iterator[DevTools]:
    binary = find_chromium()
    profile = Path(tempfile.mkdtemp(prefix="llmd-docs-chromium-"))
    log = (profile / "chromium.log").open("wb")
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (profile / "chromium.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"{binary} did not open its DevTools port:\n{tail}", pytrace=False)
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        client = DevTools(f"ws://127.0.0.1:{port}{path}")
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.send("Browser.close")
            client.close()
    finally:
        stop_process_group(proc)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def stop_process_group(proc: subprocess.Popen) -> None:
    """End the browser and its helper processes (its own session), before its profile goes."""
    try:
        proc.wait(10)  # Browser.close asked it to quit
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while True:  # helpers of the browser left in its process group
        try:
            os.killpg(proc.pid, signal.SIGKILL if time.monotonic() > deadline else 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def visit(tools: DevTools, session: str, url: str) -> dict:
    """Open url in the session's tab; the page's facts and what failed to load."""
    tools.events.clear()
    result = tools.send("Page.navigate", {"url": url}, session)
    if result.get("errorText"):
        return {"error": result["errorText"]}
    tools.wait_event("Page.loadEventFired", session)
    page = tools.send("Runtime.evaluate", {"expression": PAGE_JS, "returnByValue": True}, session)[
        "result"
    ]["value"]
    page["failed"] = []
    requested: dict[str, str] = {}
    for event in tools.events:
        params = event.get("params", {})
        if event.get("method") == "Network.requestWillBeSent":
            requested[params["requestId"]] = params["request"]["url"]
        elif event.get("method") == "Network.responseReceived":
            response = params["response"]
            if response["status"] >= 400:
                page["failed"].append(f"{response['url']}: HTTP {response['status']}")
        elif event.get("method") == "Network.loadingFailed" and not params.get("canceled"):
            url = requested.get(params["requestId"], params["type"])
            page["failed"].append(f"{url}: {params['errorText']}")
    return page


@pytest.fixture(scope="module")
def site() -> dict:
    """Every page of build/docs, opened in Chromium: {path relative to build/docs: facts}."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"{SITE} has no docsite: run `make docs` first (make docs-test does)")
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html"))
    with serve(SITE) as base, chromium() as tools:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            tools.send(f"{domain}.enable", {}, session)
        facts = {path: visit(tools, session, base + path) for path in pages}
        statuses: dict[str, int] = {}
        for page in facts.values():
            for item in page.get("links", []) + page.get("resources", []):
                url = item["url"].split("#", 1)[0]
                if url.startswith(base) and url not in statuses:
                    path = urllib.parse.unquote(url[len(base) :])
                    statuses[url] = (
                        200 if path in facts and "error" not in facts[path] else http_status(url)
                    )
    return {"base": base, "pages": facts, "statuses": statuses}


def _page_path(base: str, url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))
    return (
        "index.html" if path in ("", "/") else (path + "index.html" if path.endswith("/") else path)
    )


def test_every_page_loads_with_its_resources(site):
    broken = {
        path: page.get("error") or page["failed"]
        for path, page in site["pages"].items()
        if page.get("error") or page["failed"]
    }
    assert len(site["pages"]) > 40, sorted(site["pages"])
    assert not broken, broken


def test_links_inside_the_site_reach_a_page_and_its_anchor(site):
    base, pages = site["base"], site["pages"]
    broken = []
    for path, page in pages.items():
        for link in page["links"]:
            url = link["url"]
            if not url.startswith(base):
                continue
            target_url, _hash, fragment = url.partition("#")
            status = site["statuses"][target_url]
            if status != 200:
                broken.append(f"{path}: {link['raw']} -> HTTP {status}")
                continue
            target = _page_path(base, target_url)
            fragment = urllib.parse.unquote(fragment)
            if fragment and target in pages and fragment not in pages[target]["ids"]:
                broken.append(f"{path}: {link['raw']} -> no id {fragment!r} on {target}")
    assert not broken, "\n".join(broken)


def test_nothing_points_outside_the_project(site):
    base = site["base"]
    outside, external = [], set()
    for path, page in site["pages"].items():
        for kind in ("links", "resources"):
            for item in page[kind]:
                url, raw = item["url"], item["raw"] or ""
                scheme = urllib.parse.urlsplit(url).scheme
                if any(s in raw or s in url for s in OUTSIDE) or scheme not in (
                    "http",
                    "https",
                    "mailto",
                ):
                    outside.append(f"{path}: {kind[:-1]} {raw!r} ({url})")
                elif not url.startswith(base):
                    if kind == "resources":
                        outside.append(f"{path}: resource from another site: {url}")
                    external.add(url)
    EXTERNAL_LIST.parent.mkdir(parents=True, exist_ok=True)
    EXTERNAL_LIST.write_text("".join(f"{url}\n" for url in sorted(external)))
    print(f"{len(external)} links to other sites, listed in {EXTERNAL_LIST}")
    assert not outside, "\n".join(outside)


def test_links_to_the_project_repository_name_its_files(site):
    """The "Edit on GitHub" links and the guides' links into llmd/gke name files of this tree."""
    links = yaml.safe_load((ROOT / "docs" / "docsite" / "links.yml").read_text())
    repo = links["edit_on_github"]["repository"]
    pattern = re.compile(
        rf"https://github\.com/{re.escape(repo)}/(?:blob|edit|tree)/[^/]+/([^?#]+)"
    )
    named, missing = 0, []
    for path, page in site["pages"].items():
        for link in page["links"]:
            match = pattern.match(link["url"])
            if match:
                named += 1
                if not (ROOT / urllib.parse.unquote(match.group(1))).exists():
                    missing.append(f"{path}: {link['url'].split('?')[0]}")
    assert named > 0, f"no page links to a file of {repo}"
    assert not missing, "\n".join(missing)


def _headings(site, page: str) -> list[tuple[int, str]]:
    facts = site["pages"].get(page)
    assert facts is not None, f"{page} is missing from the docsite"
    return [(h["level"], h["text"]) for h in facts["headings"]]


def _modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem[0] != "_")


def _roles() -> dict[str, dict]:
    return {
        spec.parents[1].name: yaml.safe_load(spec.read_text())["argument_specs"]
        for spec in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml"))
    }


def _filters() -> list[str]:
    names = []
    for source in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        match = re.search(
            r"^DOCUMENTATION = r?[\"']{3}(.*?)[\"']{3}", source.read_text(), re.S | re.M
        )
        if match:
            names.append(yaml.safe_load(match.group(1))["name"])
    return names


def _guides() -> dict[str, str]:
    """{guide name: title} of docs/docsite/extra-docs.yml, titles from the RST sources."""
    index = yaml.safe_load((ROOT / "docs" / "docsite" / "extra-docs.yml").read_text())
    guides = {}
    for section in index["sections"]:
        for name in section["toctree"]:
            lines = (ROOT / "docs" / "docsite" / "rst" / f"{name}.rst").read_text().splitlines()
            guides[name] = next(
                lines[i].strip()
                for i in range(len(lines) - 1)
                if lines[i].strip()
                and re.fullmatch(r"([=\-~^*#])\1+", lines[i + 1].strip())
                and len(lines[i + 1].strip()) >= len(lines[i].strip())
            )
    return guides


@pytest.mark.parametrize("module", _modules())
def test_module_page_has_its_sections(site, module):
    headings = _headings(site, f"{COLLECTION}/{module}_module.html")
    assert headings[0][0] == 1 and headings[0][1].startswith(f"llmd.gke.{module} module – ")
    sections = {text for level, text in headings if level == 2}
    missing = {"Synopsis", "Parameters", "Examples", "Return Values"} - sections
    assert not missing, f"{module}: no {sorted(missing)} in {sorted(sections)}"


@pytest.mark.parametrize("role", sorted(_roles()))
def test_role_page_has_its_entry_points(site, role):
    headings = _headings(site, f"{COLLECTION}/{role}_role.html")
    assert headings[0][0] == 1 and headings[0][1].startswith(f"llmd.gke.{role} role – ")
    # {entry point: the h3 sections under its h2 "Entry point NAME – ..."}
    found: dict[str, set[str]] = {}
    current = None
    for level, text in headings:
        if level == 2:
            match = re.match(r"Entry point (\S+) – ", text)
            current = match.group(1) if match else None
            if current:
                found[current] = set()
        elif level == 3 and current:
            found[current].add(text)
    for entry_point, spec in _roles()[role].items():
        assert entry_point in found, f"{role}: no entry point {entry_point} in {sorted(found)}"
        wanted = {"Synopsis"} | ({"Parameters"} if spec.get("options") else set())
        missing = wanted - found[entry_point]
        assert not missing, f"{role} {entry_point}: no {sorted(missing)}"


@pytest.mark.parametrize("name", _filters())
def test_filter_page_has_its_sections(site, name):
    headings = _headings(site, f"{COLLECTION}/{name}_filter.html")
    assert headings[0][1].startswith(f"llmd.gke.{name} filter – ")
    sections = {text for level, text in headings if level == 2}
    missing = {"Synopsis", "Input", "Examples", "Return Value"} - sections
    assert not missing, f"{name}: no {sorted(missing)}"


@pytest.mark.parametrize("guide", sorted(_guides()))
def test_guide_page_is_there_with_its_title(site, guide):
    headings = _headings(site, f"{COLLECTION}/docsite/{guide}.html")
    assert headings[0] == (1, _guides()[guide])


def test_collection_index_links_every_page(site):
    base = site["base"]
    index = f"{COLLECTION}/index.html"
    linked = {_page_path(base, link["url"]) for link in site["pages"][index]["links"]}
    wanted = (
        {f"{COLLECTION}/{m}_module.html" for m in _modules()}
        | {f"{COLLECTION}/{r}_role.html" for r in _roles()}
        | {f"{COLLECTION}/{f}_filter.html" for f in _filters()}
        | {f"{COLLECTION}/docsite/{g}.html" for g in _guides()}
    )
    assert not wanted - linked, sorted(wanted - linked)


def test_conformance_page_carries_the_whole_ledger(site):
    """docs/conformance.md (Markdown) is rendered into the conformance guide, every section."""
    ledger = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    wanted = [line[3:].strip() for line in ledger.splitlines() if line.startswith("## ")]
    assert wanted, "docs/conformance.md has no sections"
    headings = {text for _level, text in _headings(site, f"{COLLECTION}/docsite/conformance.html")}
    missing = [title for title in wanted if not any(h.startswith(title) for h in headings)]
    assert not missing, missing
