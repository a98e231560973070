"""Time to triage every card of a workspace by keyboard in `datacurate review`, in headless Chromium.

On a copy of WORKSPACE (default: a fresh `datacurate demo` workspace, after its clean and vet), the
app is served on 127.0.0.1 and Selenium presses one key per card, as a person who had decided would:
`x` (set aside) for vet's off-topic cards and clean's copies, `k` (keep) for the rest, then `u`
(undo) once. Reported: the page load, the time from each key to the card marked done (the app's
share of a person's time; the person's own look comes on top), and the whole queue.

    python benchmarks/bench_review.py [WORKSPACE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ASIDE = {"off-topic", "duplicate", "near-duplicate", "test-leak", "label-conflict"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", nargs="?", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        ws = tmp / "ws"
        if args.workspace:
            shutil.copytree(args.workspace, ws)
        else:
            subprocess.run([sys.executable, "-m", "datacurate", "-q", "demo", str(ws)], check=True,
                           stdout=subprocess.DEVNULL)
        run(ws, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(root: Path, tmp: Path) -> None:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from datacurate.review.app import create_app, new_token
    from datacurate.review.serve import bind
    from datacurate.core.workspace import Workspace

    token = new_token()
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(Workspace(root), token), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,860"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.01)
        start = time.perf_counter()
        driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".item.current"))
        loaded = time.perf_counter() - start
        total = int(driver.execute_script("return S.total"))
        body = driver.find_element(By.TAG_NAME, "body")
        per_key, reasons = [], {}
        queue_start = time.perf_counter()
        for _ in range(total):
            card = driver.execute_script("return S.cards[S.idx]")
            if card is None or card.get("done"):
                break
            reasons[card["reason"]] = reasons.get(card["reason"], 0) + 1
            item = f'.item[data-id="{card["id"]}"]'
            t = time.perf_counter()
            body.send_keys("x" if card["reason"] in ASIDE or card["stage"] == "vet" else "k")
            wait.until(lambda d: "done" in d.find_element(By.CSS_SELECTOR, item).get_attribute("class")
                       or d.find_element(By.ID, "msg").get_attribute("class") == "error")
            per_key.append(time.perf_counter() - t)
        queue = time.perf_counter() - queue_start
        t = time.perf_counter()
        body.send_keys("u")
        wait.until(lambda d: "undone" in d.find_element(By.ID, "msg").text)
        undo = time.perf_counter() - t
    finally:
        driver.quit()
        server.should_exit = True
    print(f"workspace {root.name}: {total} cards ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))})")
    print(f"page load {loaded:.2f} s; {len(per_key)} keys in {queue:.1f} s: per card median "
          f"{statistics.median(per_key) * 1000:.0f} ms, max {max(per_key) * 1000:.0f} ms; undo {undo * 1000:.0f} ms")


if __name__ == "__main__":
    main()
