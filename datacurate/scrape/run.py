"""`datacurate scrape` as a library call: plan queries, fetch result pages, download, validate,
save, record.

A pool of `concurrency` threads does the network (result pages and images), a small pool decodes,
hashes and saves what came, so fetch threads never wait on the CPU or the disk; the main thread
schedules both (a result page is fetched for a class only while it lacks candidates,
and no more downloads run for a class than images it still needs, so nothing is fetched in vain)
and is the only one that writes the catalog.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.terminal import phase
from datacurate.core.index import index_files, walk_files
from datacurate.executors.base import Executor, executor_for
from datacurate.scrape import engines as eng
from datacurate.scrape import refusals
from datacurate.scrape.licenses import allows
from datacurate.scrape.examine import Examined, check_x_robots, examine
from datacurate.scrape.net import HostGate, Net, NetConfig, Refused
from datacurate.scrape.options import ROBOTS_TOKEN, ScrapeOptions
from datacurate.scrape.plan import class_queries, load_url_lists, select_classes
from datacurate.scrape.refusals import Refusal
from datacurate.scrape.remote import Downloader
from datacurate.scrape.result import ScrapeResult
from datacurate.scrape.store import (
    Store, disk_full_error, forget, is_disk_full, prior_urls, record, recover, sweep_partials, unlink_saved,
)
from datacurate.core.workspace import Workspace

@dataclass
class Candidate:
    klass: str
    engine: str
    query: str
    rank: int
    image_url: str
    page_url: str | None
    info: dict | None = None      # what the engine says of the image: license, author, title...


@dataclass
class Stream:
    """The result pages of one engine for one query of one class."""

    engine: str
    query: str
    pending: deque = field(default_factory=deque)
    fetched: int = 0
    ranked: int = 0               # candidates seen so far (next rank)
    seen_pages: set = field(default_factory=set)
    done: bool = False
    busy: bool = False            # a page of this stream is being fetched
    recognised: int = 0           # pages the parser recognised so far


@dataclass
class ClassState:
    klass: str
    need: int
    streams: list[Stream]
    saved: int = 0
    buffer: deque = field(default_factory=deque)
    seen_urls: set = field(default_factory=set)
    prior: set = field(default_factory=set)
    page_inflight: int = 0
    dl_inflight: int = 0
    turn: int = 0

    @property
    def remaining(self) -> int:
        return self.need - self.saved

    def next_stream(self, usable: set) -> Stream | None:
        live = [s for s in self.streams if not s.done and not s.busy and s.pending and s.engine in usable]
        if not live:
            return None
        self.turn += 1
        return live[self.turn % len(live)]

    def finished(self, usable: set) -> bool:
        if self.remaining <= 0:
            return True
        return (not self.buffer and not self.dl_inflight and not self.page_inflight
                and self.next_stream_peek(usable) is None)

    def next_stream_peek(self, usable: set) -> Stream | None:
        return next((s for s in self.streams if not s.done and s.pending and s.engine in usable), None)


@dataclass
class Outcome:
    cand: Candidate
    status: int | None = None
    content_type: str | None = None
    nbytes: int | None = None
    sha256: str | None = None
    reason: str | None = None
    detail: str = ""
    row: dict | None = None
    hashes: dict | None = None


def scrape(ws: Workspace, opts: ScrapeOptions, *, quiet: bool = True,
           warn: Callable[[str], None] | None = None, ray: str | bool | None = None) -> ScrapeResult:
    """Top up data/scraped/<class>/ to opts.max_per_class images per class (see the module doc).

    `ray`: download and decode on a Ray cluster (an address, "auto"; False: here; None: datacurate.yaml's
    `ray.address`); result pages are still read here, and only this process saves and writes the catalog.
    """
    warn = warn or (lambda msg: print(f"datacurate: warning: {msg}", file=sys.stderr))
    started = time.monotonic()
    classes = select_classes(ws, opts)
    queries = class_queries(ws, opts, classes)
    url_lists = load_url_lists(ws, opts.urls, list(queries)) if "urls" in opts.engines else {}
    result = ScrapeResult(dry_run=opts.dry_run, queries=queries, skipped=[c for c in classes if c not in queries],
                          fallback=opts.fallback)
    if opts.dry_run:
        _plan_only(ws, opts, result, url_lists)
    else:
        from datacurate.scrape.report import write_reports

        with open_catalog(ws) as cat, executor_for(ws, ray, folders=[ws.state_dir], quiet=quiet) as executor:
            try:
                _run(ws, cat, opts, result, url_lists, quiet, warn, executor)
                result.seconds = time.monotonic() - started
                with phase("scrape: writing reports", quiet=quiet):
                    result.reports = write_reports(ws, cat, result)
            except Exception as exc:
                if is_disk_full(exc):
                    raise disk_full_error(ws.scraped if isinstance(exc, OSError) else ws.catalog_path) from None
                raise
    result.seconds = time.monotonic() - started
    return result


def _streams(opts: ScrapeOptions, query_list: list[str], pages_needed: int) -> list[Stream]:
    out = []
    for query in query_list:
        for engine in opts.engines:
            spec = eng.ENGINES[engine]
            if engine == "urls":
                continue
            urls = eng.page_urls(spec, query, opts.base_for(engine) or "", min(opts.max_pages, pages_needed),
                                 apikey=opts.flickr_key or "", licenses=opts.license)
            out.append(Stream(engine, query, deque(urls)))
    return out


def _plan_only(ws: Workspace, opts: ScrapeOptions, result: ScrapeResult, url_lists: dict) -> None:
    for klass, qs in result.queries.items():
        have = sum(1 for _ in walk_files(ws.scraped / klass))
        result.had[klass], result.need[klass] = have, max(0, opts.max_per_class - have)
        for engine in opts.engines:
            spec = eng.ENGINES[engine]
            if engine == "urls":
                for url in url_lists.get(klass, []):
                    result.planned.append((klass, engine, "(urls file)", url))
                continue
            per_page = spec.page_size or 1
            pages = max(1, min(opts.max_pages, -(-result.need[klass] // per_page))) if result.need[klass] else 0
            for q in qs:
                for url in eng.page_urls(spec, q, opts.base_for(engine) or "", pages, apikey=opts.flickr_key or "",
                                         licenses=opts.license)[:pages]:
                    result.planned.append((klass, engine, q, url))


def _warm_up() -> None:
    """Import the perceptual-hash stack (scipy: ~0.5 s) while the first result pages load."""
    try:
        import imagehash  # noqa: F401
    except Exception:  # noqa: BLE001 - the first inspect_bytes will report it
        pass


def _run(ws, cat: Catalog, opts: ScrapeOptions, result: ScrapeResult, url_lists: dict, quiet: bool, warn,
         executor: Executor | None = None) -> None:
    threading.Thread(target=_warm_up, daemon=True).start()
    sweep_partials(ws)
    recover(ws, cat)  # files a killed run saved but never catalogued: recorded with their provenance
    rows = index_files(ws, cat, quiet=quiet)
    known = {r["sha256"] for r in rows if r["sha256"]}
    known.update(r[0] for r in cat.db.execute("SELECT sha256 FROM files WHERE sha256 IS NOT NULL"))
    have: dict[str, int] = {}
    for r in rows:
        if r["source"] == "scraped" and r["status"] == "ok":
            have[r["class"]] = have.get(r["class"], 0) + 1
    prior = prior_urls(cat)
    states = []
    for klass, qs in result.queries.items():
        result.had[klass] = have.get(klass, 0)
        need = max(0, opts.max_per_class - result.had[klass])
        result.need[klass] = need
        if need == 0:
            continue
        st = ClassState(klass, need, _streams(opts, qs, opts.max_pages), prior=prior.get(klass, set()))
        for engine in opts.engines:
            result.tally(klass, engine)
        states.append(st)
        notes: list = []
        for rank, url in enumerate(url_lists.get(klass, [])):
            _take(result, notes, st, Candidate(klass, "urls", "(urls file)", rank, url, None), opts.license)
        record(cat, notes)
    Runner(ws, cat, opts, result, states, known, quiet, warn, executor).run()


def _take(result: ScrapeResult, rows: list, st: ClassState, cand: Candidate, allowed: frozenset | None) -> None:
    """A candidate from a page: queued, or noted (in `rows`, for the catalog) as a repeat or as
    under a licence `--license` does not allow (never downloaded)."""
    tally = result.tally(st.klass, cand.engine)
    tally.candidates += 1
    reason = "repeat-url" if cand.image_url in st.seen_urls else "seen-before" if cand.image_url in st.prior else None
    if reason is None and not allows(allowed, (cand.info or {}).get("license")):
        reason = "license"
    st.seen_urls.add(cand.image_url)
    if reason is None:
        st.buffer.append(cand)
        return
    tally.rejected[reason] += 1
    rows.append((_prov(Outcome(cand, reason=reason)), None, None))


LICENSE_FIELDS = ("license", "license_version", "license_url", "author", "title")


def _prov(out: Outcome) -> dict:
    c = out.cand
    info = c.info or {}
    return {"class": c.klass, "engine": c.engine, "query": c.query, "rank": c.rank, "image_url": c.image_url,
            "page_url": c.page_url, "http_status": out.status, "content_type": out.content_type, "bytes": out.nbytes,
            "sha256": out.sha256, "path": out.row["path"] if out.row else None, "reason": out.reason,
            **{k: _clip(info.get(k)) for k in LICENSE_FIELDS}}


def _clip(value, limit: int = 2000):
    return str(value)[:limit] if value not in (None, "") else None


class Runner:
    """The scheduling loop (main thread) and the work done in the pool (page fetch, download)."""

    def __init__(self, ws, cat, opts: ScrapeOptions, result: ScrapeResult, states: list[ClassState], known: set,
                 quiet, warn, executor: Executor | None = None):
        self.ws, self.cat, self.opts, self.result, self.states, self.warn = ws, cat, opts, result, states, warn
        self.quiet = quiet
        self.stop = threading.Event()
        self.net = Net(NetConfig(user_agent=opts.user_agent, robots_token=ROBOTS_TOKEN, timeout=opts.timeout,
                                 per_host=opts.per_host, delay=opts.delay, retries=opts.retries,
                                 max_wait=opts.max_wait, max_redirects=opts.max_redirects,
                                 allow_private=opts.allow_private, ignore_robots=opts.ignore_robots,
                                 allow_hosts=opts.allow_host), self.stop)
        self.page_headers: dict[str, dict] = {}
        # result-page requests per engine, apart from the host gate (an API's limit is not its image hosts')
        self.api_gate = HostGate(opts.concurrency, 0.0, self.stop)
        for engine in opts.engines:
            if engine in API_LIMITS:
                self.api_gate.configure(engine, *API_LIMITS[engine](opts))
            if engine == "openverse" and opts.openverse_token:
                self.page_headers[engine] = {"Authorization": f"Bearer {opts.openverse_token}"}
        self.full: Exception | None = None  # a disk-full error seen while saving: the run stops
        self.store = Store(ws, known)
        self.limits = opts.limits
        self.first_download: float | None = None
        self.last_download: float | None = None
        self.rows: list = []  # catalog entries waiting for the next transaction
        self.finished: queue.SimpleQueue = queue.SimpleQueue()  # futures as they complete
        self.downloader = None  # a Ray cluster's: images are fetched and decoded there
        if executor is not None and executor.remote:
            self.downloader = Downloader(executor, self.net.config, opts.max_bytes, self.limits)

    # -- main loop ------------------------------------------------------------------------------
    def run(self) -> None:
        from tqdm import tqdm

        total = sum(s.need for s in self.states)
        bar = tqdm(total=total, desc="scraping", unit="img", disable=True if (self.quiet or not total) else None, file=sys.stderr,
                   leave=False, dynamic_ncols=True)
        self.fetch_pool = ThreadPoolExecutor(self.opts.concurrency, thread_name_prefix="fetch")
        # decoding is short; fsync of each saved file is what takes time here, and it frees the GIL
        self.work_pool = ThreadPoolExecutor(max(4, self.opts.concurrency // 2), thread_name_prefix="check")
        futures: dict[Future, tuple[str, ClassState, object]] = {}
        # Decoding threads hold the GIL for up to the switch interval (5 ms) each time a fetch thread
        # wakes on its socket; a shorter interval keeps that convoy from stretching every request.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        try:
            while True:
                self._schedule(futures)
                if not futures:
                    break
                done = self._completed()
                for fut in done:
                    kind, st, payload = futures.pop(fut)
                    if kind == "page":
                        st.page_inflight -= 1
                        payload.busy = False
                        self._on_page(st, payload, fut.result())
                    elif kind == "fetch":
                        self._fetched(fut.result(), st, futures)
                    else:
                        st.dl_inflight -= 1
                        saved_before = st.saved
                        self._on_image(st, fut.result())
                        bar.update(st.saved - saved_before)
                self._record()
                if self.full is not None:
                    raise self.full
        except BaseException:
            self.stop.set()
            for fut in futures:
                fut.cancel()
            raise
        finally:
            sys.setswitchinterval(switch)
            self.fetch_pool.shutdown(wait=True, cancel_futures=True)
            self.work_pool.shutdown(wait=True, cancel_futures=True)
            self._settle(futures)
            bar.close()
            if self.first_download is not None and self.last_download is not None:
                self.result.download_seconds = self.last_download - self.first_download

    def _settle(self, futures: dict) -> None:
        """After an interruption: record the checks that finished (their files are saved)."""
        for fut, (kind, st, _) in futures.items():
            if kind == "check" and fut.done() and not fut.cancelled() and fut.exception() is None:
                out = fut.result()
                if out.row is not None:
                    st.saved += 1
                    self.result.tally(st.klass, out.cand.engine).saved += 1
                    self.rows.append((_prov(out), out.row, out.hashes))
        self._record()

    def _record(self) -> None:
        """Write the waiting catalog entries in one transaction; if the disk is full, take back the
        files of those entries, so a saved file and its rows land together or neither does."""
        rows, self.rows = self.rows, []
        try:
            record(self.cat, rows)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            unlink_saved(self.ws, [row for _, row, _ in rows if row is not None])
            forget(self.ws, [row for _, row, _ in rows])
            raise disk_full_error(self.ws.catalog_path) from None
        forget(self.ws, [row for _, row, _ in rows])

    def usable(self) -> set:
        """Engines whose pages may be asked for now: not refused, and with --fallback only the first
        of the list that has not refused."""
        live = [e for e in self.opts.engines if e not in self.result.refused and e != "urls"]
        return set(live[:1] if self.opts.fallback else live)

    def _schedule(self, futures: dict) -> None:
        # Keep a few fetches queued beyond the pool's threads, so none waits for this loop.
        fetching = sum(1 for kind, _, _ in futures.values() if kind != "check")
        slots = self.opts.concurrency + max(2, self.opts.concurrency // 2) - fetching
        usable = self.usable()
        active = [s for s in self.states if not s.finished(usable)]
        for st in active:
            if slots <= 0:
                return
            if st.page_inflight < 2 and len(st.buffer) < st.remaining - st.dl_inflight + 1:
                stream = st.next_stream(usable)
                if stream is not None:
                    url = stream.pending.popleft()
                    stream.seen_pages.add(url)
                    stream.busy = True
                    st.page_inflight += 1
                    futures[self._watch(self.fetch_pool.submit(self._fetch_page, stream, url))] = ("page", st, stream)
                    slots -= 1
        moved = True
        while slots > 0 and moved:
            moved = False
            for st in active:
                if slots > 0 and st.buffer and st.dl_inflight < st.remaining:
                    cand = st.buffer.popleft()
                    st.dl_inflight += 1
                    if self.first_download is None:
                        self.first_download = time.monotonic()
                    futures[self._watch(self.fetch_pool.submit(self._fetch_image, cand))] = ("fetch", st, cand)
                    slots -= 1
                    moved = True

    def _watch(self, fut: Future) -> Future:
        fut.add_done_callback(self.finished.put)
        return fut

    def _completed(self) -> list[Future]:
        """Futures done since the last call (waits up to 0.5 s for the first; Ctrl-C stays prompt)."""
        try:
            done = [self.finished.get(timeout=0.5)]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self.finished.get_nowait())
            except queue.Empty:
                return done

    def _fetched(self, got, st: ClassState, futures: dict) -> None:
        """A downloaded body goes to the check pool (decode, hash, save) so fetch threads stay on the network."""
        if isinstance(got, Outcome):
            done: Future = Future()
            done.set_result(got)
            futures[self._watch(done)] = ("check", st, got.cand)
        else:
            cand, body = got
            futures[self._watch(self.work_pool.submit(self._check, cand, body))] = ("check", st, cand)

    # -- result pages ---------------------------------------------------------------------------
    def _fetch_page(self, stream: Stream, url: str):
        """The parsed page, or a Refused (network or HTTP error, with the engine's refusal if it was one)."""
        spec = eng.ENGINES[stream.engine]
        try:
            self.api_gate.enter(stream.engine)
            try:
                got = self.net.fetch(url, max_bytes=self.opts.max_bytes, check_robots=stream.engine == "greedy",
                                     headers=self.page_headers.get(stream.engine), error_body=True)
            finally:
                self.api_gate.leave(stream.engine)
        except Refused as exc:
            refusal = refusals.from_status(exc.status, exc.body, exc.url)
            if refusal is not None and exc.status in (429, 503):
                n = self.opts.retries
                note = exc.detail[exc.detail.index("("):] if "(" in exc.detail else \
                    f"({urlhost(exc.url)} kept refusing after {n} {'retry' if n == 1 else 'retries'})"
                refusal = Refusal(refusal.kind, f"{refusal.words} {note}", exc.status, exc.url)
            exc.refusal = refusal  # type: ignore[attr-defined]
            return exc
        try:
            return eng.read_page(spec, got.data, got.url)
        except Exception as exc:  # noqa: BLE001 - a parser must never take the run down
            return Refused("parse-error", f"{type(exc).__name__}: {exc}")

    def _refuse(self, engine: str, refusal: Refusal) -> None:
        """Give an engine up for this run (the first refusal is the one reported)."""
        if engine in self.result.refused:
            return
        self.result.refused[engine] = refusal
        then = ""
        if self.opts.fallback:
            nxt = sorted(self.usable())
            then = f"; falling back to {nxt[0]}" if nxt else "; no engine left to fall back to"
        self.warn(f"{engine} {refusal.text()}{then}")

    def _on_page(self, st: ClassState, stream: Stream, got) -> None:
        tally = self.result.tally(st.klass, stream.engine)
        stream.fetched += 1
        if isinstance(got, Refused):
            if got.reason == "stopped":
                return
            tally.pages += 1
            stream.done = True
            tally.page_errors[got.reason] += 1
            refusal = getattr(got, "refusal", None)
            if refusal is not None:
                self._refuse(stream.engine, refusal)
            return
        tally.pages += 1
        page: eng.Page = got
        if page.refusal is not None:
            tally.page_errors[page.refusal.kind] += 1
            stream.done = True
            self._refuse(stream.engine, page.refusal)
            return
        if not page.recognised and stream.recognised and not page.results_like:
            tally.empty_pages += 1  # a blank page after recognised ones of this query: the results ran out
            stream.done = True
            return
        if not page.recognised:
            tally.unrecognised_pages += 1
            stream.done = True
            self._refuse(stream.engine, Refusal("format-changed", "a result page was not recognised (the page format "
                                                                  f"may have changed): {page.url}", 200, page.url))
            return
        stream.recognised += 1
        if stream.engine == "greedy":  # a site page may hold only links: follow them either way
            for link in page.links:
                if link not in stream.seen_pages and stream.fetched + len(stream.pending) < self.opts.max_pages:
                    stream.seen_pages.add(link)
                    stream.pending.append(link)
        if not page.candidates:
            tally.empty_pages += 1
            stream.done = stream.engine != "greedy" or not stream.pending
            return
        for url, page_url in page.candidates:
            cand = Candidate(st.klass, stream.engine, stream.query, stream.ranked, url, page_url, page.info.get(url))
            _take(self.result, self.rows, st, cand, self.opts.license)
            stream.ranked += 1

    # -- images ---------------------------------------------------------------------------------
    def _fetch_image(self, cand: Candidate):
        """(candidate, Fetched or Examined), or an Outcome when nothing usable came."""
        if self.downloader is not None:
            return self._fetch_on_cluster(cand)
        try:
            return cand, self.net.fetch(cand.image_url, max_bytes=self.opts.max_bytes, check_headers=check_x_robots)
        except Refused as exc:
            return Outcome(cand, exc.status, exc.content_type, exc.nbytes, reason=exc.reason, detail=exc.detail)

    def _fetch_on_cluster(self, cand: Candidate):
        """The download and decode as a Ray task; the per-host limits are held here, for the whole cluster."""
        host = urlhost(cand.image_url).lower()
        try:
            self.net.gate.enter(host)
        except Refused as exc:
            return Outcome(cand, reason=exc.reason, detail=exc.detail)
        try:
            got = self.downloader.fetch(cand.image_url, self.stop)
        finally:
            self.net.gate.leave(host)
        if got[0] == "examined":
            return cand, got[1]
        _, status, ctype, nbytes, reason, detail = got
        if status in (429, 503):
            self.net.gate.cool_down(host, 1.0)
        return Outcome(cand, status, ctype, nbytes, reason=reason, detail=detail)

    def _check(self, cand: Candidate, got) -> Outcome:
        """Decode fully (the same check as clean; done already on a cluster), claim the content hash, save under it."""
        try:
            return self._keep(cand, got if isinstance(got, Examined) else examine(got, self.limits))
        except Exception as exc:  # noqa: BLE001 - one odd file must not end the run
            return Outcome(cand, got.status, got.content_type, got.nbytes if isinstance(got, Examined) else len(got.data),
                           reason="check-error", detail=f"{type(exc).__name__}: {exc}")

    def _keep(self, cand: Candidate, ex: "Examined") -> Outcome:
        """Claim the content hash of an examined download and save it under that name."""
        out = Outcome(cand, ex.status, ex.content_type, ex.nbytes, ex.sha256, ex.reason, ex.detail)
        if ex.reason is not None:
            return out
        saved_ins = ex.saved
        digests = {ex.sha256, saved_ins.sha256}
        if self.stop.is_set():
            out.reason = "stopped"
            return out
        if not self.store.claim(*digests):
            out.reason, out.detail = "duplicate", "the workspace already holds these bytes"
            return out
        try:
            out.row = self.store.save(cand.klass, ex.data, saved_ins, prov=_prov(out))
        except OSError as exc:
            self.store.release(*digests)
            out.reason, out.detail = ("disk-full" if is_disk_full(exc) else "write-error"), str(exc)
            if out.reason == "disk-full":
                self.full = disk_full_error(self.ws.scraped / cand.klass)
                self.stop.set()
            return out
        out.hashes = saved_ins.hashes
        return out

    def _on_image(self, st: ClassState, out: Outcome) -> None:
        if out.reason == "stopped":
            return
        self.last_download = time.monotonic()
        self.result.downloads += 1
        tally = self.result.tally(st.klass, out.cand.engine)
        if out.row is not None:
            st.saved += 1
            tally.saved += 1
        else:
            tally.rejected[out.reason] += 1
        self.rows.append((_prov(out), out.row, out.hashes))


def urlhost(url: str | None) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc if url else ""


# APIs that publish how they want to be asked: (requests at once, seconds between starts) for their host.
API_LIMITS = {
    "wikimedia": lambda opts: (1, opts.delay),   # Wikimedia: requests in series, not in parallel
    # Openverse: anonymous clients 20 requests a minute (200 a day), registered ones 100 a minute
    "openverse": lambda opts: (1, 0.6 if opts.openverse_token else 3.0),
}
