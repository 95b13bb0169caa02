"""The plain-text description written to the destination as BACKUPSITE-FORMAT.txt.

The README includes the same procedure. Keep both in step with manifest.py.
"""

FORMAT_TEXT = r"""BACKUPSITE NATIVE BACKUP FORMAT, version 1
==========================================

This folder holds backups written by Backupsite. Everything needed to restore them is in this
folder; Backupsite itself is not needed. Tools used below: an FTP client (lftp or curl), zstd,
jq, sha256sum, and the shell's tail/head (or dd).

LAYOUT

  BACKUPSITE-FORMAT.txt               this file
  <account>/<backup_id>/              one backup of one hosting account
      manifest-<gen>.json.zst         the list of everything in the backup (see MANIFEST)
      packs/<gen>-<n>.pack            file contents, many files per pack (see PACKS)
      db/<database>-<gen>.sql.zst     one database dump: plain SQL, zstd-compressed
      LOCKED                          present when the backup is locked (kept from rotation)

  <backup_id> is the UTC time the backup was first taken plus a random suffix, for example
  20250704T021500Z-1a2b3c4d. <gen> (6 digits) is the generation: an "incremental" backup
  folder is updated in place, and each update writes a new manifest generation that reuses
  the packs of earlier generations for files that did not change.

  THE VALID MANIFEST IS THE ONE WITH THE HIGHEST <gen> THAT DECOMPRESSES WITHOUT ERROR
  (`zstd -t manifest-000003.json.zst`). A folder without such a manifest is an unfinished
  backup: ignore it. Files that the valid manifest does not mention (older generations,
  *.tmp files) are leftovers of earlier or failed runs: ignore them.

MANIFEST

  zstd -dc manifest-000003.json.zst gives JSON Lines. The first line is a header:

    {"format": "backupsite-native", "version": 1, "account": "bob",
     "backup_id": "...", "generation": 3, "type": "full" or "incremental",
     "job": {"uuid": "...", "name": "..."}, "created": "2025-07-04T02:15:00Z" (when the data
     was taken), "hostname": "...", "chunk_size": 8388608, "entries": <number of lines below>,
     "packs": [{"name": "000001-00000.pack", "size": ..., "sha256": "..."}, ...],
     "databases": [{"name": "bob_wp", "object": "db/bob_wp-000003.sql.zst",
                    "size": <SQL bytes>, "stored": <object bytes>, "sha256": "<of the SQL>"}],
     "parts": [{"kind": "homedir" | "databases" | "email_accounts", "name": ..., "size": ...}],
     "totals": {...},
     "owner": {"uid": 1001, "gid": 1001}  (the home folder's owner and group: the account's),
     "users": {"0": "root", "1001": "bob"}, "groups": {"99": "nobody", "1001": "bob"}
              (the names, on the backed-up system, of every owner and group below)}

  Every other line is one entry of the home folder, with paths relative to it:

    "p"   path (when the name is valid UTF-8), or
    "pb"  the path's raw bytes in base64 (names that are not UTF-8)
    "t"   "f" file, "d" folder, "l" symlink
    "m"   permission bits (decimal; 420 = 0644, 493 = 0755)
    "mt"  modification time in nanoseconds since 1970-01-01 UTC
    "s"   size in bytes (files)
    "h"   sha256 of the file's content (files)
    "l" / "lb"  the symlink's target (text / base64 of raw bytes); links are not followed
    "u" / "g"   owner uid / group gid, only when not the header's "owner" uid / gid
                (absent: the account's; backups without "owner" record no owners at all)
    "k"   the file's content: a list of chunks, in order, each
          [pack, offset, stored_length, codec, length]
          = `stored_length` bytes at byte `offset` (0-based) of packs/<pack>; codec "zstd"
          means one zstd frame that decompresses to `length` bytes, "raw" means the bytes as
          they are. An empty file has no chunks. Files bigger than chunk_size have several.

  Special files (devices, FIFOs, sockets) are not backed up. Hard links are stored as
  separate files.

PACKS

  A pack is chunks concatenated with nothing in between. It can hold bytes no manifest
  references any more (from files changed since); they are simply skipped.

RESTORE ONE FILE BY HAND

  1. Fetch the manifest and find the entry:
       curl -o m.zst 'ftp://USER:PASS@HOST/DIR/bob/20250704T021500Z-1a2b3c4d/manifest-000003.json.zst'
       zstd -dc m.zst | tail -n +2 | jq -c 'select(.p == "public_html/index.php")'
  2. For each chunk [pack, offset, stored, codec, length] of "k", in order:
       fetch only those bytes (END = offset + stored - 1):
         curl -r OFFSET-END -o chunk 'ftp://USER:PASS@HOST/DIR/bob/<backup_id>/packs/PACK'
       or cut them from a downloaded pack:
         tail -c +$((OFFSET + 1)) PACK | head -c STORED > chunk
         (or: dd if=PACK of=chunk bs=1M iflag=skip_bytes,count_bytes skip=OFFSET count=STORED)
       then append:  codec zstd: zstd -dc chunk >> index.php    codec raw: cat chunk >> index.php
  3. Check: sha256sum index.php must print the entry's "h".

RESTORE EVERYTHING BY HAND

  lftp -u USER,PASS -e 'mirror DIR/bob/20250704T021500Z-1a2b3c4d backup; bye' HOST
  cd backup
  zstd -dc manifest-000003.json.zst | jq -rn 'input.owner as $o | inputs |
    def q: @sh;
    def oct: "\((./512|floor)%8)\((./64|floor)%8)\((./8|floor)%8)\(.%8)";
    def unpack: if . == "zstd" then "zstd -dc" else "cat" end;
    select(.p) | ("../restored/" + .p) as $t |
    "chown -h \(.u // $o.uid // ""):\(.g // $o.gid // "") \($t|q)" as $own |
    if .t == "d" then "mkdir -p -- \($t|q)", $own
    elif .t == "l" and .l then
      "mkdir -p -- \"$(dirname -- \($t|q))\" && ln -sfn -- \(.l|q) \($t|q)", $own
    elif .t == "l" then "echo \($t|q): link target not UTF-8, see lb >&2"
    else
      "mkdir -p -- \"$(dirname -- \($t|q))\" && : > \($t|q)",
      (.k[] | "tail -c +\(.[1] + 1) packs/\(.[0]) | head -c \(.[2]) | \(.[3]|unpack) >> \($t|q)"),
      $own,
      "chmod \(.m|oct) \($t|q)",
      "touch -m -d @\(.mt / 1000000000 | floor) \($t|q)"
    end' > restore.sh
  less restore.sh     # check it: paths containing ".." or starting with "/" must not be run
  sh -e restore.sh
  zstd -dc manifest-000003.json.zst | tail -n +2 | jq -r \
    'select(.t == "f" and .p and (.p | contains("\n") | not)) | "\(.h)  ../restored/\(.p)"' \
    | sha256sum -c --quiet           # (checks all files except names with a newline)

  The chown lines put owners back by number, the account's entries onto the header's
  "owner" (run as root; on another system, or when the account's uid changed, edit the
  numbers first, using the header's "users" and "groups" names; as another user drop them:
  grep -v '^chown' restore.sh). Entries whose names are not UTF-8 have "pb" instead of "p"
  (links: "lb" instead of "l") and are not handled by the script above: decode them with  jq -r '.pb' | base64 -d  and
  restore them the same way. Folder times are not set by the script (run touch on folders last if needed).

DATABASES

  zstd -dc db/bob_wp-000003.sql.zst | mariadb bob_wp
  (the dump holds no CREATE DATABASE; create the database first)
"""
