"""The content of a generated dataset: word lists and `Gen`, which derives every file's bytes
(code, mail, images, logs, SQL dumps, archives) from one seeded RNG.

Part of bench/make_dataset.py, the team's dataset generator copied from the baseline scripts
(make-dataset.py): same seed, same bytes. Lint rules are off for it so that the
generator's code stays as the baseline ran it.
"""

# ruff: noqa
from __future__ import annotations

import random
import time
import zipfile
from pathlib import Path

KB = 1024
MB = 1024 * 1024

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
