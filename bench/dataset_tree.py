"""The dataset's tree: `build` lays out a cPanel-style home, `mutate` changes, adds and deletes
~PCT% of its files, `stats` counts it.

Part of bench/make_dataset.py, the team's dataset generator copied from the baseline scripts
(make-dataset.py): same seed, same bytes. Lint rules are off for it so that the
generator's code stays as the baseline ran it.
"""

# ruff: noqa
from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

from bench.dataset_content import BASE_EPOCH, KB, MB, NAME_WORDS, PLUGINS, THEMES, Gen

# --------------------------------------------------------------------------- layout


def clamp(x, lo, hi):
    return max(lo, min(hi, x))


def lognormal_size(r: random.Random, median: int, sigma: float, lo: int, hi: int) -> int:
    return int(clamp(r.lognormvariate(math.log(median), sigma), lo, hi))


def build(root: Path, files: int, size_mb: float, seed: int) -> dict:
    g = Gen(seed)
    r = g.rng
    target = int(size_mb * MB)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        sys.exit(f"{root} is not empty; refusing to overwrite")

    n_large = 3 if files <= 5000 else 10
    n_img = round(files * 0.08)
    n_mail = round(files * 0.20)
    n_text = files - n_large - n_img - n_mail

    plan: list[tuple[str, str, int]] = []  # (relpath, kind, size)
    dirs: set[str] = set()

    def add_dir(d: str):
        while d and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)

    # ---- code tree (WordPress-like) -------------------------------------
    code_roots = [
        "public_html",
        "public_html/wp-admin",
        "public_html/wp-admin/includes",
        "public_html/wp-admin/css",
        "public_html/wp-admin/js",
        "public_html/wp-includes",
        "public_html/wp-includes/js",
        "public_html/wp-includes/css",
        "public_html/wp-includes/blocks",
        "public_html/wp-includes/rest-api/endpoints",
        "public_html/wp-content/languages/plugins",
    ]
    for p in PLUGINS[: max(4, min(len(PLUGINS), files // 1500))]:
        code_roots += [
            f"public_html/wp-content/plugins/{p}",
            f"public_html/wp-content/plugins/{p}/includes",
            f"public_html/wp-content/plugins/{p}/assets/js",
            f"public_html/wp-content/plugins/{p}/assets/css",
        ]
    for t in THEMES[: max(2, min(len(THEMES), files // 5000))]:
        code_roots += [
            f"public_html/wp-content/themes/{t}",
            f"public_html/wp-content/themes/{t}/template-parts",
            f"public_html/wp-content/themes/{t}/assets/css",
            f"public_html/wp-content/themes/{t}/inc",
        ]
    code_dirs = list(code_roots)
    want_dirs = max(len(code_roots) + 5, n_text // 11)
    while len(code_dirs) < want_dirs:
        parent = r.choice(code_dirs)
        if parent.count("/") >= 8 or parent == "public_html":
            continue
        code_dirs.append(
            f"{parent}/{r.choice(NAME_WORDS)}" if r.random() < 0.8 else f"{parent}/{r.choice(g.idents)}"
        )
    code_dirs = sorted(set(code_dirs))
    for d in code_dirs:
        add_dir(d)

    exts = (
        [".php"] * 55
        + [".js"] * 15
        + [".css"] * 10
        + [".html"] * 4
        + [".json", ".txt", ".po", ".svg", ".xml"] * 3
    )
    fixed = [
        "public_html/.htaccess",
        "public_html/wp-config.php",
        "public_html/index.php",
        "public_html/wp-login.php",
        "public_html/robots.txt",
        ".bashrc",
        ".profile",
        "public_html/wp-content/.htaccess",
        "public_html/wp-content/uploads/.htaccess",
    ]
    used = set()
    for p in fixed[:n_text]:
        plan.append((p, "text", lognormal_size(r, 3 * KB, 0.5, 1 * KB, 30 * KB)))
        used.add(p)
    while len(plan) < n_text:
        d = r.choice(code_dirs)
        ext = r.choice(exts)
        name = (
            (
                f"class-{r.choice(NAME_WORDS)}-{r.choice(g.idents)}"
                if ext == ".php" and r.random() < 0.4
                else f"{r.choice(NAME_WORDS)}-{r.choice(g.idents)}"
            )
            + (".min" if ext in (".js", ".css") and r.random() < 0.3 else "")
            + ext
        )
        p = f"{d}/{name}"
        if p in used:
            continue
        used.add(p)
        plan.append((p, "text", lognormal_size(r, 5 * KB, 0.8, 1 * KB, 30 * KB)))

    # ---- uploads (images) -------------------------------------------------
    months = [f"public_html/wp-content/uploads/{y}/{m:02d}" for y in range(2019, 2024) for m in range(1, 13)]
    i = 0
    while i < n_img:
        d = r.choice(months)
        base = f"{r.choice(g.idents)}-{r.randint(1, 9999)}"
        ext = r.choice([".jpg"] * 6 + [".png"] * 3 + [".webp"])
        for suffix in ["", "-1024x768", "-300x225", "-150x150"][: r.randint(1, 4)]:
            if i >= n_img:
                break
            p = f"{d}/{base}{suffix}{ext}"
            if p in used:
                continue
            used.add(p)
            add_dir(d)
            plan.append((p, "image", r.randint(50 * KB, 500 * KB)))
            i += 1
    add_dir("public_html/wp-content/cache")  # empty
    add_dir("tmp")  # empty

    # ---- mail (Maildir++) -------------------------------------------------
    n_boxes = max(3, n_mail // 500)
    boxes = ["info", "sales", "admin", "support", "billing", "office", "noreply", "jobs", "press", "dev"][
        :n_boxes
    ]
    boxes += [f"user{k}" for k in range(n_boxes - len(boxes))]
    box_w = [80] + [20 / max(1, n_boxes - 1)] * (n_boxes - 1)
    folders = (
        ["cur"] * 75
        + ["new"] * 3
        + [".Sent/cur"] * 14
        + [".Trash/cur"] * 4
        + [".Drafts/cur"]
        + [".Junk/cur"] * 3
    )
    for b in boxes:
        for f in [
            "cur",
            "new",
            "tmp",
            ".Sent/cur",
            ".Sent/new",
            ".Sent/tmp",
            ".Trash/cur",
            ".Trash/new",
            ".Trash/tmp",
            ".Drafts/cur",
            ".Drafts/new",
            ".Drafts/tmp",
            ".Junk/cur",
            ".Junk/new",
            ".Junk/tmp",
        ]:
            add_dir(f"mail/example.com/{b}/{f}")
        plan.append((f"mail/example.com/{b}/dovecot-uidlist", "text", r.randint(1 * KB, 8 * KB)))
        plan.append((f"mail/example.com/{b}/subscriptions", "text", 1 * KB))
    n_mail -= 2 * n_boxes
    t0 = BASE_EPOCH - 400 * 86400
    for k in range(n_mail):
        b = r.choices(boxes, weights=box_w)[0]
        f = r.choice(folders)
        ts = t0 + k * (400 * 86400 // max(1, n_mail)) + r.randint(0, 600)
        size = lognormal_size(r, 4 * KB, 0.7, 1 * KB, 60 * KB)
        flags = r.choice(["S", "S", "RS", "FS", ""]) if f.endswith("cur") else ""
        name = (
            f"{ts}.M{r.randint(100000, 999999)}P{r.randint(1000, 99999)}.mail.example.com,S={size},W={size + size // 40}"
            + (f":2,{flags}" if f.endswith("cur") else "")
        )
        plan.append((f"mail/example.com/{b}/{f}/{name}", "mail", size))
    # (ids in the name are unique per k thanks to ts + random; collisions are harmless but check)
    assert len({p for p, _, _ in plan}) == len(plan), "duplicate path"

    # ---- a few large files sized to hit the byte target -------------------
    small_bytes = sum(s for _, _, s in plan)
    remaining = max(n_large * 10 * MB, target - small_bytes)
    kinds = ["log", "sql", "zip", "targz"]
    for k in range(n_large):
        kind = kinds[k % len(kinds)]
        per = remaining / (n_large - k)
        size = int(clamp(per * r.uniform(0.85, 1.15) if k < n_large - 1 else per, 10 * MB, 50 * MB))
        remaining -= size
        month = 12 - k // len(kinds)
        p = {
            "log": f"logs/example.com-ssl_log-2023-{month:02d}",
            "sql": f"sql/acct_wp-2023-{month:02d}.sql",
            "zip": f"backups/site-2023-{month:02d}.zip",
            "targz": f"backups/home-2023-{month:02d}.tar.gz",
        }[kind]
        plan.append((p, kind, size))
    for p, _, _ in plan:
        add_dir(os.path.dirname(p))

    # ---- write ------------------------------------------------------------
    for d in sorted(dirs):
        (root / d).mkdir(parents=True, exist_ok=True)
    total = 0
    for p, kind, size in plan:
        total += write_file(g, root / p, p, kind, size)
    # deterministic mtimes: files in the past two years, dirs after their files
    for p, _, _ in plan:
        t = BASE_EPOCH - r.randint(86400, 730 * 86400)
        os.utime(root / p, (t, t))
        if p.endswith("wp-config.php"):
            os.chmod(root / p, 0o600)
    for d in sorted(sorted(dirs), key=lambda x: -x.count("/")):  # sets iterate in hash order: sort first
        t = BASE_EPOCH - r.randint(0, 86400)
        os.utime(root / d, (t, t))
    os.utime(root, (BASE_EPOCH, BASE_EPOCH))
    return stats(root)


def write_file(g: Gen, path: Path, rel: str, kind: str, size: int) -> int:
    ext = path.suffix
    if kind == "text":
        data = g.text_for(ext, size, rel)
    elif kind == "mail":
        data = g.mail_message(size, BASE_EPOCH - 86400)
    elif kind == "image":
        data = g.image(size, ext)
    elif kind == "log":
        data = g.access_log(size, BASE_EPOCH - 31 * 86400)
    elif kind == "sql":
        data = g.sql_dump(size)
    elif kind == "zip":
        g.write_zip(path, size)
        return path.stat().st_size
    elif kind == "targz":
        data = g.tar_gz_like(size)
    else:
        raise ValueError(kind)
    path.write_bytes(data)
    return len(data)


# --------------------------------------------------------------------------- mutate


def classify(rel: str) -> str:
    ext = os.path.splitext(rel)[1]
    if rel.startswith("mail/"):
        return "mail"
    if ext in (".jpg", ".png", ".webp"):
        return "image"
    if rel.startswith("logs/"):
        return "log"
    if ext == ".sql":
        return "sql"
    if ext == ".zip":
        return "zip"
    if rel.endswith(".tar.gz"):
        return "targz"
    return "text"


def list_files(root: Path) -> list[str]:
    out = []
    for dp, dn, fn in os.walk(root):
        dn.sort()
        for f in sorted(fn):
            out.append(os.path.relpath(os.path.join(dp, f), root))
    return sorted(out)


def mutate(root: Path, pct: float, seed: int, mtime: int | None) -> dict:
    g = Gen(seed)
    r = g.rng
    files = list_files(root)
    n = max(1, round(len(files) * pct / 100))
    n_mod, n_add = round(n * 0.60), round(n * 0.25)
    n_del = n - n_mod - n_add
    chosen = r.sample(files, n_mod + n_del)
    mods, dels = chosen[:n_mod], chosen[n_mod:]
    now = int(time.time()) if mtime is None else mtime
    changed_bytes = 0
    summary = {"modified": 0, "modified_same_size": 0, "added": 0, "deleted": 0}

    for rel in mods:
        p = root / rel
        kind = classify(rel)
        size = p.stat().st_size
        if r.random() < 0.2:  # same-size in-place edit (size-only sync would miss it)
            with open(p, "r+b") as fh:
                off = r.randrange(max(1, size - 16))
                fh.seek(off)
                fh.write(
                    r.randbytes(min(16, size)) if kind in ("image", "zip", "targz") else b"X" * min(16, size)
                )
            summary["modified_same_size"] += 1
        elif kind == "log":  # logs grow
            extra = g.access_log(max(64 * KB, size // 30), BASE_EPOCH)
            with open(p, "ab") as fh:
                fh.write(b"\n" + extra)
        elif kind == "zip":
            p.unlink()
            g.write_zip(p, int(size * r.uniform(0.8, 1.2)))
        else:
            write_file(g, p, rel, kind, max(1 * KB, int(size * r.uniform(0.8, 1.2))))
        os.utime(p, (now, now))
        changed_bytes += p.stat().st_size
        summary["modified"] += 1

    for rel in dels:
        (root / rel).unlink()
        summary["deleted"] += 1

    existing = [f for f in files if f not in set(dels)]
    k = 0
    while summary["added"] < n_add:
        near = r.choice(existing)
        kind = classify(near)
        if kind in ("log", "sql", "zip", "targz"):
            continue
        d = os.path.dirname(near)
        ext = os.path.splitext(near)[1] if kind != "mail" else ""
        name = (
            f"new-{seed}-{k}{ext}"
            if kind != "mail"
            else f"{now + k}.M{r.randint(100000, 999999)}P{r.randint(1000, 99999)}.mail.example.com,S=0"
        )
        k += 1
        p = root / d / name
        if p.exists():
            continue
        size = {
            "image": r.randint(50 * KB, 500 * KB),
            "mail": lognormal_size(r, 4 * KB, 0.7, 1 * KB, 60 * KB),
        }.get(kind, lognormal_size(r, 5 * KB, 0.8, 1 * KB, 30 * KB))
        changed_bytes += write_file(g, p, os.path.join(d, name), kind, size)
        os.utime(p, (now, now))
        summary["added"] += 1

    summary["bytes_written"] = changed_bytes
    summary["files_before"] = len(files)
    return summary


# --------------------------------------------------------------------------- stats


def stats(root: Path) -> dict:
    nfiles = ndirs = nbytes = 0
    maxdir = 0
    for dp, dn, fn in os.walk(root):
        ndirs += len(dn)
        nfiles += len(fn)
        maxdir = max(maxdir, len(fn) + len(dn))
        for f in fn:
            nbytes += os.lstat(os.path.join(dp, f)).st_size
    return {
        "files": nfiles,
        "dirs": ndirs,
        "bytes": nbytes,
        "mb": round(nbytes / MB, 1),
        "max_entries_in_one_dir": maxdir,
    }
