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

Copied from the team's baseline scripts (/work/shared/bench/make-dataset.py) so the repository is
self-contained; same seed, same bytes. Only formatting was changed (ruff format); lint rules are
off for it so that the generator's code stays as the baseline ran it.
"""

# ruff: noqa
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import zipfile
from pathlib import Path

KB = 1024
MB = 1024 * 1024

PRESETS = {
    "small": dict(files=2000, size_mb=100),
    "large": dict(files=20000, size_mb=1000),
}

BASE_EPOCH = 1704067200  # 2024-01-01T00:00:00Z; all generated mtimes are before it

PHP_WORDS = """
function return array public private protected static class extends implements
namespace use new null true false if else elseif foreach while for switch case
break continue echo isset empty unset require_once include_once global const
string int bool float void self parent this throw try catch finally instanceof
add_action add_filter apply_filters do_action get_option update_option
wp_enqueue_script wp_enqueue_style esc_html esc_attr esc_url __ _e sanitize_text_field
wp_nonce_field check_admin_referer current_user_can get_post_meta update_post_meta
wp_remote_get is_wp_error get_template_part the_content the_title have_posts
the_post wp_query register_post_type register_taxonomy plugin_dir_path
admin_url home_url site_url wp_die wp_redirect sprintf printf array_map
array_filter array_merge in_array implode explode strtolower trim count str_replace
preg_match json_encode json_decode intval absint wpdb prepare get_results
""".split()

JS_WORDS = """
const let var function return if else for while new this document window jQuery
addEventListener querySelector classList toggle forEach map filter reduce Promise
async await fetch then catch JSON parse stringify length push splice indexOf
element target event preventDefault settings options init render update state
props component module exports require import default ajax url data success
""".split()

CSS_PROPS = """
margin padding border color background font-size font-weight line-height display
position top left right bottom width height max-width min-height flex align-items
justify-content grid-template-columns gap z-index opacity transition transform
box-shadow border-radius text-align text-decoration overflow cursor content
""".split()

NAME_WORDS = """
admin ajax api assets block blocks cache class comments core css customizer
dashboard editor fields fonts forms frontend functions gallery header helpers
icons images inc includes js lib library media menu meta modules network options
page parts partials plugin post posts public rest search settings shortcodes
sidebar src templates theme tools user users utils vendor widgets woocommerce
seo forms cart checkout emails integrations payments shipping legacy compat
""".split()

PLUGINS = """
akismet contact-form-7 woocommerce wordpress-seo elementor jetpack wpforms-lite
really-simple-ssl updraftplus wordfence classic-editor litespeed-cache
all-in-one-wp-migration duplicate-post redirection wp-mail-smtp
""".split()

THEMES = "twentytwentyfour twentytwentythree astra generatepress oceanwp".split()

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.1 Safari/605.1.15",
    "WordPress/6.4.2; https://example.com",
    "curl/7.88.1",
]


# --------------------------------------------------------------------------- content


class Gen:
    """All content is derived from one seeded RNG, consumed in a fixed order."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        r = self.rng
        # Extra identifiers so text is not trivially repetitive (gzip ~3-4x, like real code).
        syl = [
            "ba",
            "co",
            "de",
            "fi",
            "ga",
            "ho",
            "ju",
            "ka",
            "lo",
            "me",
            "ni",
            "po",
            "qu",
            "ra",
            "si",
            "tu",
            "ve",
            "wa",
            "xo",
            "yu",
            "ze",
            "tr",
            "st",
            "ch",
        ]
        self.idents = [
            "".join(r.choices(syl, k=r.randint(2, 4))) + r.choice(["", "_id", "_data", "Handler", "_cb", "s"])
            for _ in range(3000)
        ]
        self.php = PHP_WORDS + self.idents
        self.js = JS_WORDS + self.idents
        self.words_en = (
            [w for w in self.idents]
            + """the and for with this that from your have will
            you are not but all can more about page post site order please update new
            thanks regards meeting invoice attached report week today tomorrow""".split()
        )

    # -- text ----------------------------------------------------------------
    def _lines(self, nbytes: int, make_line) -> bytes:
        out, size = [], 0
        while size < nbytes:
            line = make_line()
            out.append(line)
            size += len(line) + 1
        data = "\n".join(out).encode()
        return data[:nbytes] if len(data) > nbytes else data

    def php_file(self, nbytes: int, relpath: str) -> bytes:
        r, w = self.rng, self.php
        header = f"<?php\n/**\n * {relpath}\n *\n * @package {r.choice(NAME_WORDS).title()}\n * @since {r.randint(2, 6)}.{r.randint(0, 9)}.{r.randint(0, 9)}\n */\n\n"
        templates = [
            lambda: f"    ${r.choice(w)} = {r.choice(w)}( ${r.choice(w)}, '{r.choice(w)}' );",
            lambda: f"    if ( ! {r.choice(w)}( ${r.choice(w)} ) ) {{",
            lambda: f"        return {r.choice(w)}( '{r.choice(w)}_{r.choice(w)}', ${r.choice(w)} );",
            lambda: "    }",
            lambda: f"    // {' '.join(r.choices(self.words_en, k=r.randint(3, 10)))}",
            lambda: f"function {r.choice(w)}_{r.choice(w)}( ${r.choice(w)}, ${r.choice(w)} = null ) {{",
            lambda: (
                f"    add_action( '{r.choice(w)}', array( $this, '{r.choice(w)}' ), {r.randint(1, 99)} );"
            ),
            lambda: "",
        ]
        return header.encode() + self._lines(max(0, nbytes - len(header)), lambda: r.choice(templates)())

    def js_file(self, nbytes: int, relpath: str) -> bytes:
        r, w = self.rng, self.js
        templates = [
            lambda: f"  const {r.choice(w)} = {r.choice(w)}.{r.choice(w)}({r.choice(w)}, '{r.choice(w)}');",
            lambda: f"  if (!{r.choice(w)}.{r.choice(w)}) {{ return {r.choice(w)}; }}",
            lambda: (
                f"  {r.choice(w)}.addEventListener('{r.choice(['click', 'change', 'load', 'submit'])}', function (e) {{"
            ),
            lambda: "  });",
            lambda: f"  // {' '.join(r.choices(self.words_en, k=r.randint(3, 9)))}",
            lambda: f"function {r.choice(w)}({r.choice(w)}, {r.choice(w)}) {{",
            lambda: "}",
        ]
        return f"/*! {relpath} */\n(function ($) {{\n".encode() + self._lines(
            nbytes - 40, lambda: r.choice(templates)()
        )

    def css_file(self, nbytes: int, relpath: str) -> bytes:
        r = self.rng

        def rule():
            sel = "." + "-".join(r.choices(self.idents, k=r.randint(1, 3)))
            props = "".join(
                f"  {p}: {r.randint(0, 400)}px;\n"
                if r.random() < 0.6
                else f"  {p}: #{r.randrange(16**6):06x};\n"
                for p in r.sample(CSS_PROPS, r.randint(2, 7))
            )
            return f"{sel} {{\n{props}}}\n"

        return f"/* {relpath} */\n".encode() + self._lines(nbytes, rule)

    def html_file(self, nbytes: int, relpath: str) -> bytes:
        r = self.rng
        head = f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{relpath}</title></head>\n<body>\n'
        return head.encode() + self._lines(
            nbytes - len(head),
            lambda: (
                f'<div class="{r.choice(self.idents)} {r.choice(self.idents)}"><p>{" ".join(r.choices(self.words_en, k=r.randint(5, 20)))}</p></div>'
            ),
        )

    def misc_text(self, nbytes: int, relpath: str) -> bytes:
        r = self.rng
        return self._lines(
            nbytes, lambda: f"{r.choice(self.idents)} = {r.choice(self.idents)} {r.randint(0, 99999)}"
        )

    def text_for(self, ext: str, nbytes: int, relpath: str) -> bytes:
        if ext == ".php":
            return self.php_file(nbytes, relpath)
        if ext == ".js":
            return self.js_file(nbytes, relpath)
        if ext == ".css":
            return self.css_file(nbytes, relpath)
        if ext in (".html", ".htm"):
            return self.html_file(nbytes, relpath)
        return self.misc_text(nbytes, relpath)

    def mail_message(self, nbytes: int, when: int) -> bytes:
        r = self.rng
        frm = f"{r.choice(self.idents)}@{r.choice(self.idents)}.example"
        hdr = (
            f"Return-Path: <{frm}>\nDelivered-To: info@example.com\n"
            f"Received: from mx{r.randint(1, 9)}.{r.choice(self.idents)}.example ([{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}])\n"
            f"\tby mail.example.com with ESMTPS id {r.randrange(16**12):012x}; {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(when))}\n"
            f"From: {frm}\nTo: info@example.com\nSubject: {' '.join(r.choices(self.words_en, k=r.randint(2, 7)))}\n"
            f"Message-ID: <{r.randrange(16**16):016x}@{r.choice(self.idents)}.example>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
        )
        return hdr.encode() + self._lines(
            max(0, nbytes - len(hdr)), lambda: " ".join(r.choices(self.words_en, k=r.randint(4, 14)))
        )

    def access_log(self, nbytes: int, start: int) -> bytes:
        r = self.rng
        t = [start]
        paths = (
            ["/", "/wp-login.php", "/wp-admin/admin-ajax.php", "/xmlrpc.php", "/feed/"]
            + [f"/{r.choice(self.idents)}/{r.choice(self.idents)}/" for _ in range(400)]
            + [f"/wp-content/uploads/2023/{m:02d}/{r.choice(self.idents)}.jpg" for m in range(1, 13)]
        )

        def line():
            t[0] += r.randint(0, 3)
            return (
                f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)} - - "
                f"[{time.strftime('%d/%b/%Y:%H:%M:%S +0000', time.gmtime(t[0]))}] "
                f'"{r.choice(["GET", "GET", "GET", "POST"])} {r.choice(paths)} HTTP/1.1" '
                f'{r.choice([200, 200, 200, 301, 304, 404])} {r.randint(200, 90000)} "-" "{r.choice(USER_AGENTS)}"'
            )

        return self._lines(nbytes, line)

    def sql_dump(self, nbytes: int) -> bytes:
        r = self.rng
        head = (
            "-- MySQL dump 10.13  Distrib 8.0.35\n--\n-- Host: localhost    Database: acct_wp\n"
            "SET NAMES utf8mb4;\n\nDROP TABLE IF EXISTS `wp_posts`;\nCREATE TABLE `wp_posts` (\n"
            "  `ID` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `post_content` longtext NOT NULL,\n"
            "  PRIMARY KEY (`ID`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n"
        )
        n = [0]

        def line():
            rows = []
            for _ in range(r.randint(3, 8)):
                n[0] += 1
                body = " ".join(r.choices(self.words_en, k=r.randint(10, 60)))
                rows.append(
                    f"({n[0]},{r.randint(1, 20)},'2023-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} 10:00:00',"
                    f"'<!-- wp:paragraph --><p>{body}</p><!-- /wp:paragraph -->','{r.choice(self.idents)}','publish')"
                )
            return f"INSERT INTO `wp_posts` VALUES {','.join(rows)};"

        return head.encode() + self._lines(nbytes - len(head), line)

    # -- binary --------------------------------------------------------------
    def image(self, nbytes: int, ext: str) -> bytes:
        r = self.rng
        if ext == ".png":
            head, tail = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"IEND\xaeB`\x82"
        elif ext == ".webp":
            head, tail = b"RIFF\x00\x00\x00\x00WEBPVP8 ", b""
        else:
            head, tail = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", b"\xff\xd9"
        return head + r.randbytes(max(0, nbytes - len(head) - len(tail))) + tail

    def write_zip(self, path: Path, nbytes: int) -> None:
        r = self.rng
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            left, i = nbytes, 0
            while left > 64 * KB:
                part = min(left - 1 * KB, r.randint(1 * MB, 6 * MB))
                zi = zipfile.ZipInfo(
                    f"public_html/wp-content/uploads/{2023 - i % 4}/{r.choice(self.idents)}-{i}.jpg",
                    date_time=(2023, 1 + i % 12, 1 + i % 28, 12, 0, 0),
                )
                z.writestr(zi, r.randbytes(max(1, part - 200)))
                left = nbytes - z.fp.tell() - 200
                i += 1

    def tar_gz_like(self, nbytes: int) -> bytes:
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + self.rng.randbytes(nbytes - 10)


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
