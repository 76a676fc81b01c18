"""Make the pictures in docs/img: the `make demo` console and report.html as Chromium shows it.

    .venv/bin/python docs/screenshots.py            # needs `make install` (Chromium included)

1. Runs the demo's two commands (as `make demo` does, into out/screenshots/demo) and keeps
   their console: docs/img/demo-console.txt, and docs/img/demo-console.png drawn from it.
2. Screenshots the demo's report.html (docs/img/report.png).
3. Plants duplicates in a copy of 15 images per class of the bundled sample (a copy under
   the same label, one under another label, a re-encoded JPEG), featurizes and trains on it,
   and screenshots its duplicates and confused-pairs sections (docs/img/report-*.png).
4. Trains on the demo's features again with ``--C auto`` and screenshots the "Choice of C"
   section (docs/img/report-c.png).

Chromium runs with --no-sandbox (as root in the build machines).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "screenshots"
IMG = REPO / "docs" / "img"
POOL3 = [sys.executable, "-m", "pool3.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def run(*args: str) -> str:
    """Run pool3 ARGS; its console (stderr, then stdout, as a terminal would interleave
    them for these commands, which print their summary last)."""
    done = subprocess.run([*POOL3, *args], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stderr + done.stdout


def shoot(url: str, path: Path, width: int, height: int) -> None:
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={path}", url],
        check=True, capture_output=True,
    )  # fmt: skip
    print("wrote", path.relative_to(REPO))


def console_png(text: str, path: Path) -> None:
    page = OUT / "console.html"
    page.write_text(
        "<!DOCTYPE html><meta charset='utf-8'><body style='margin:0;background:#1e1e1e'>"
        "<pre style='color:#ddd;font:13px/1.35 monospace;padding:12px;white-space:pre-wrap'>"
        f"{html.escape(text)}</pre>",
        encoding="utf-8",
    )
    lines = sum(1 + len(line) // 150 for line in text.splitlines())
    shoot(page.as_uri(), path, 1280, 40 + 18 * lines)


def planted_collection(root: Path) -> Path:
    images = root / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    sample = REPO / "data" / "fashion-mnist-sample"
    for label in sorted({p.name.rsplit("_", 1)[0] for p in sample.glob("*_[0-9]*.png")}):
        for src in sorted(sample.glob(f"{label}_[0-9]*.png"))[:15]:
            shutil.copy(src, images / src.name)
    shutil.copy(sorted(images.glob("coat_*.png"))[0], images / "coat_90001.png")
    shutil.copy(sorted(images.glob("shirt_*.png"))[0], images / "t_shirt_90002.png")
    with Image.open(sorted(images.glob("bag_*.png"))[0]) as img:
        img.convert("RGB").save(images / "bag_90003.jpg", format="JPEG", quality=90)
    return images


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT, ignore_errors=True)  # a first run's console, as a new user sees it
    OUT.mkdir(parents=True)
    demo = OUT / "demo"
    console = "$ make demo\n"
    for args in (
        ("featurize", "--conf", "local", "--mode", "overwrite",
         "--input", "data/fashion-mnist-sample", "--output", f"{demo}/features"),
        ("train", "--conf", "local", "--mode", "overwrite",
         "--features", f"{demo}/features", "--output", f"{demo}/model"),
    ):  # fmt: skip
        console += f"$ pool3 {' '.join(args)}\n" + run(*args)
    (IMG / "demo-console.txt").write_text(console, encoding="utf-8")
    console_png(console, IMG / "demo-console.png")
    shoot((demo / "model" / "report.html").as_uri(), IMG / "report.png", 1280, 1500)

    images = planted_collection(OUT / "planted")
    feats, model = OUT / "planted" / "features", OUT / "planted" / "model"
    run("featurize", "--conf", "local", "--mode", "overwrite", "--input", str(images),
        "--output", str(feats))  # fmt: skip
    run("train", "--conf", "local", "--mode", "overwrite", "--features", str(feats),
        "--output", str(model))  # fmt: skip
    page = (model / "report.html").read_text(encoding="utf-8")
    for anchor, name, height in (
        ("duplicates-and-label-conflicts", "report-duplicates.png", 700),
        ("most-confused-pairs", "report-confused.png", 1000),
    ):
        shoot(section(page, anchor, OUT / f"{anchor}.html"), IMG / name, 1280, height)

    tuned = OUT / "demo" / "model-c-auto"
    run("train", "--conf", "local", "--mode", "overwrite", "--features", f"{demo}/features",
        "--output", str(tuned), "--C", "auto")  # fmt: skip
    page = (tuned / "report.html").read_text(encoding="utf-8")
    shoot(section(page, "choice-of-c", OUT / "choice-of-c.html"), IMG / "report-c.png", 1280, 700)


def section(page: str, anchor: str, path: Path) -> str:
    """The report's head and its part from the ``<h2 id=anchor>`` on: the section as the
    report draws it, at the top of a page (headless Chromium does not scroll to #anchors)."""
    head = page[: page.index("<body>") + len("<body>")]
    path.write_text(head + page[page.index(f'<h2 id="{anchor}">') :], encoding="utf-8")
    return path.as_uri()


if __name__ == "__main__":
    main()
