#!/usr/bin/env python3
"""Deterministic generator of a realistic shared-hosting account tree.

    make_dataset.py DIR --preset small            # ~2,000 files / ~100 MB
    make_dataset.py DIR --preset large            # ~20,000 files / ~1 GB
    make_dataset.py DIR --files N --size-mb M     # custom
    make_dataset.py DIR --mutate 1 [--seed 7]     # change/add/delete ~1% of files
    make_dataset.py DIR --stats                   # print counts / bytes as JSON

Same --seed and parameters => byte-identical tree (contents, names, mtimes).
The tree looks like a cPanel-style home directory:

    public_html/        WordPress-like code: many 1-30 KB PHP/JS/CSS/HTML
                        files (compressible), nested up to ~8 levels, dot
                        files (.htaccess), wp-content/uploads/YYYY/MM images
                        (random bytes, incompressible, 50-500 KB)
    mail/<domain>/<box> Maildir++ (cur/new/tmp, .Sent/.Trash/.Drafts/.Junk);
                        one big INBOX/cur with >2,000 messages on "large"
    logs/ sql/ backups/ a few 10-50 MB files: access log (very compressible),
                        SQL dump (compressible), zip / tar.gz (incompressible)
    tmp/, public_html/wp-content/cache/   empty directories

--mutate PCT picks ~PCT% of the existing files (seeded): 60% modified (20% of
those same-size in-place edits, logs appended, others rewritten), 25% new files
added next to existing ones, 15% deleted.  Touched files get mtime "now"
(like a real edit) unless --mtime-fixed EPOCH is given.

Copied from the team's baseline scripts (make-dataset.py) so the repository is
self-contained; same seed, same bytes. Only formatting was changed (ruff format) and the code is
split in three files: this command, bench/dataset_content.py (the content) and
bench/dataset_tree.py (build, mutate, stats). Lint rules are off for them so that the generator's
code stays as the baseline ran it.
"""

# ruff: noqa
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dataset_tree import build, mutate, stats

PRESETS = {
    "small": dict(files=2000, size_mb=100),
    "large": dict(files=20000, size_mb=1000),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--files", type=int)
    ap.add_argument("--size-mb", type=float)
    ap.add_argument("--seed", type=int, default=None, help="default 42 (generate) / 7 (mutate)")
    ap.add_argument("--mutate", type=float, metavar="PCT")
    ap.add_argument("--mtime-fixed", type=int, metavar="EPOCH", help="mtime for mutated files (default: now)")
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args()

    t = time.time()
    if a.stats:
        res = stats(a.dir)
    elif a.mutate is not None:
        res = mutate(a.dir, a.mutate, 7 if a.seed is None else a.seed, a.mtime_fixed)
        res.update(stats(a.dir))
    else:
        p = dict(PRESETS.get(a.preset, {}))
        if a.files:
            p["files"] = a.files
        if a.size_mb:
            p["size_mb"] = a.size_mb
        if "files" not in p or "size_mb" not in p:
            ap.error("give --preset or both --files and --size-mb")
        res = build(a.dir, p["files"], p["size_mb"], 42 if a.seed is None else a.seed)
    res["seconds"] = round(time.time() - t, 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
