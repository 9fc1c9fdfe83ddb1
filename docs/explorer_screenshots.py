"""Screenshots of the explorer's pages (docs/images/explorer-*.png) from a built catalog.

    python docs/explorer_screenshots.py CATALOG_DIR [--layer _blocks.4] [--channel 7]

Serves CATALOG_DIR on a free local port and drives Debian's chromium (headless) with Playwright.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from featurevis.catalog.explorer.app import create_app

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("catalog")
    ap.add_argument("--layer", default="_blocks.4")
    ap.add_argument("--channel", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "images"))
    args = ap.parse_args()
    out = Path(args.out)
    srv = uvicorn.Server(uvicorn.Config(create_app(args.catalog), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})

        def shot(name: str, full: bool = False) -> None:
            page.wait_for_load_state("load")
            page.wait_for_function("[...document.images].every(i => i.complete)")
            page.screenshot(path=str(out / f"explorer-{name}.png"), full_page=full)
            print("wrote", out / f"explorer-{name}.png")

        page.goto(base + "/")
        page.click("td a")
        shot("layers")
        page.goto(f"{page.url}/layer/{args.layer}")
        shot("grid")
        page.goto(f"{page.url}/{args.channel}")
        shot("channel", full=True)
        page.click("text=render again with other settings")
        page.fill("#render-form input[name=steps]", "128")
        page.click("#render-form button")
        page.wait_for_selector("#result", timeout=300_000)
        shot("render")
        browser.close()
    srv.should_exit = True


if __name__ == "__main__":
    main()
