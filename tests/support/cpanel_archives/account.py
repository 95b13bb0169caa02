"""What a cPanel account archive holds: account settings, DNS zones, mail, databases, SSL and the
home folder, written through the manifest's writer.

What it writes follows the team's notes on cPanel's backup format.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.support.cpanel_archives.content import (
    BASE_TIME,
    ENCODING,
    ERRORS,
    WORDS,
    _hash,
    _mysql_hash,
    random_blob,
    text_blob,
    tls_material,
)
from tests.support.cpanel_archives.databases import _databases, _mysqldump
from tests.support.cpanel_archives.manifest import _Writer

# -- account content ---------------------------------------------------------------------------


def _domains(user: str) -> dict[str, Any]:
    main = f"{user}site.com"
    return {
        "main": main,
        "addon": f"shop-{user}.org",
        "addon_sub": f"shop-{user}.{main}",
        "parked": f"{user}site.net",
        "sub": f"blog.{main}",
        "mail": [main, f"shop-{user}.org"],
    }


def _zone(domain: str, ip: str, serial: int) -> str:
    return (
        f"; cPanel first:11.110.0.15 (update_time):{BASE_TIME} Cpanel::ZoneFile::VERSION:1.3 "
        "hostname:server.example.net latest:11.110.0.15\n"
        f"; Zone file for {domain}\n$TTL 14400\n"
        f"{domain}.\t86400\tIN\tSOA\tns1.example.net.\thostmaster.example.net.\t(\n"
        f"\t\t{serial} ;Serial Number\n\t\t3600 ;refresh\n\t\t1800 ;retry\n"
        "\t\t1209600 ;expire\n\t\t86400 ;minimum\n\t)\n"
        f"{domain}.\t86400\tIN\tNS\tns1.example.net.\n{domain}.\t86400\tIN\tNS\tns2.example.net.\n"
        f"{domain}.\t14400\tIN\tA\t{ip}\n"
        f"{domain}.\t14400\tIN\tMX\t0\t{domain}.\n"
        f"mail\t14400\tIN\tCNAME\t{domain}.\nwww\t14400\tIN\tCNAME\t{domain}.\n"
        f"ftp\t14400\tIN\tA\t{ip}\n"
        f'{domain}.\t14400\tIN\tTXT\t"v=spf1 +a +mx +ip4:{ip} ~all"\n'
        f'default._domainkey\t14400\tIN\tTXT\t"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg"\n'
    )


def _yaml_map(values: dict[str, Any], indent: str = "") -> str:
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out.append(f"{indent}{key}:" + (" {}" if not value else ""))
            if value:
                out.append(_yaml_map(value, indent + "  ").rstrip("\n"))
        elif isinstance(value, list):
            out.append(f"{indent}{key}:" + (" []" if not value else ""))
            out.extend(f"{indent}  - {item}" for item in value)
        else:
            out.append(f"{indent}{key}: {value}")
    return "\n".join(out) + "\n"


def _message(rng: random.Random, seed: int, to: str, n: int, attach: bool) -> bytes:
    body = text_blob(rng, seed, rng.randint(800, 6000)).decode()
    head = (
        f"Return-Path: <sender{n}@example.org>\nDelivered-To: {to}\n"
        f"Received: from mail.example.org ([198.51.100.{n % 250}])\n\tby server.example.net with esmtps\n"
        f"Date: {datetime.fromtimestamp(BASE_TIME - n * 3600, UTC):%a, %d %b %Y %H:%M:%S +0000}\n"
        f'From: "Sender {n}" <sender{n}@example.org>\nTo: {to}\n'
        f"Subject: Message {n} about {rng.choice(WORDS)}\n"
        f"Message-ID: <{n}.{seed}@example.org>\nMIME-Version: 1.0\n"
    )
    if not attach:
        return (head + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()
    import base64

    blob = base64.encodebytes(random_blob(rng, rng.randint(5000, 60000))).decode()
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n'
        + body
        + '\n--b1\nContent-Type: application/pdf; name="doc.pdf"\nContent-Transfer-Encoding: base64\n\n'
        + blob
        + "--b1--\n"
    ).encode()


def _write_account(
    w: _Writer,
    user: str,
    rng: random.Random,
    seed: int,
    scale: float,
    *,
    home: Callable[[], None],
    legacy_ssl: bool,
) -> None:
    m = w.m
    d = m.domains
    main, addon, parked, sub = d["main"], d["addon"], d["parked"], d["sub"]
    ip = f"192.0.2.{10 + seed % 200}"
    uid = 1001

    w.dir("")
    w.text("version", "pkgacct version: 10\narchive version: 4\n")
    w.text("homedir_paths", f"/home/{user}\n")

    # -- the home folder (early in the archive, before cp/: the top is not known yet)
    home()

    # -- account settings
    w.dir("cp")
    info = {
        "BWLIMIT": "unlimited",
        "CONTACTEMAIL": f"owner@{main}",
        "DNS": main,
        "DNS1": addon,
        "DNS2": parked,
        "FEATURELIST": "default",
        "HASCGI": "1",
        "IP": ip,
        "LANG": "en",
        "MAXADDON": "unlimited",
        "MAXFTP": "unlimited",
        "MAXPOP": "unlimited",
        "MAXSQL": "unlimited",
        "MXCHECK-" + main: "0",
        "OWNER": "root",
        "PLAN": "default",
        "RS": "jupiter",
        "STARTDATE": str(BASE_TIME - 86400 * 400),
        "SUSPENDED": "0",
        "USER": user,
        "UTF8MAILBOX": "1",
    }
    m.account_info = dict(info)
    cp_text = "# cPanel -- If you edit this file directly you must run /scripts/updateuserdatacache\n"
    cp_text += "# Do not edit\n"
    cp_text += "".join(f"{k}={v}\n" for k, v in info.items())
    w.text(f"cp/{user}", cp_text, part=("account_settings", ""))
    shadow = _hash(rng)
    m.secrets.append(shadow)
    w.text("shadow", shadow, part=("account_settings", ""), mode=0o600)
    w.text("shell", "/bin/bash", part=("account_settings", ""))
    w.text("quota", "0\n", part=("account_settings", ""))

    # -- FTP accounts
    ftp_lines = [
        (user, f"{user}:{_hash(rng)}:{uid}:{uid}::/home/{user}:/bin/ftpsh\n"),
        (
            f"ftpuser@{main}",
            f"ftpuser@{main}:{_hash(rng)}:{uid}:{uid}:{user}:/home/{user}/public_html/ftpuser:/bin/ftpsh\n",
        ),
        (
            f"deploy@{addon}",
            f"deploy@{addon}:{_hash(rng)}:{uid}:{uid}:{user}:/home/{user}/{addon}:/bin/ftpsh\n",
        ),
        (
            f"{user}_logs",
            f"{user}_logs:{_hash(rng)}:{uid}:{uid}:{user}:/usr/local/apache/domlogs/{user}:/bin/ftpsh\n",
        ),
    ]
    for login, line in ftp_lines:
        m.add_part("ftp_accounts", login, len(line.encode()))
        m.secrets.append(line.split(":")[1])
    w.text("proftpdpasswd", "".join(line for _, line in ftp_lines), mode=0o600)

    # -- domains
    sub_entry = f"blog_{main}"
    addon_sub = f"shop-{user}_{main}"
    w.text("sds", f"{sub_entry}\n{addon_sub}\n", part=("domains", ""))
    w.text("sds2", f"{sub_entry}=public_html/blog\n{addon_sub}={addon}\n", part=("domains", ""))
    w.text("pds", f"{parked}\n", part=("domains", ""))
    w.text("addons", f"{addon}={addon_sub}\n", part=("domains", ""))
    m.texts[("domains", "")] = [main, "blog." + main, addon, parked]
    w.dir("userdata")
    userdata_main = {
        "addon_domains": {addon: f"shop-{user}.{main}"},
        "cp_php_magic_include_path.conf": 0,
        "main_domain": main,
        "parked_domains": [parked],
        "sub_domains": [sub, f"shop-{user}.{main}"],
    }
    w.text("userdata/main", "---\n" + _yaml_map(userdata_main), part=("domains", ""))
    for domain, root in ((main, "public_html"), (sub, "public_html/blog"), (f"shop-{user}.{main}", addon)):
        data = {
            "customlog": [{"format": "combined", "target": f"/etc/apache2/logs/domlogs/{domain}"}],
            "documentroot": f"/home/{user}/{root}",
            "group": user,
            "hascgi": 1,
            "homedir": f"/home/{user}",
            "ip": ip,
            "owner": "root",
            "phpversion": "ea-php82",
            "serveradmin": f"webmaster@{domain}",
            "serveralias": f"www.{domain}" + (f" {parked} www.{parked}" if domain == main else ""),
            "servername": domain,
            "usecanonicalname": "Off",
            "user": user,
        }
        w.text(f"userdata/{domain}", "---\n" + _yaml_map(data), part=("domains", ""))
    ssl_data = {
        "documentroot": f"/home/{user}/public_html",
        "servername": main,
        "sslcertificatefile": f"/var/cpanel/ssl/apache_tls/{main}/combined",
    }
    w.text(f"userdata/{main}_SSL", "---\n" + _yaml_map(ssl_data), part=("domains", ""))

    # -- DNS zones
    w.dir("dnszones")
    for n, zone in enumerate((main, addon, parked)):
        text = _zone(zone, ip, 2024070401 + n)
        w.text(f"dnszones/{zone}.db", text, part=("dns_zones", zone))
        m.texts[("dns_zones", zone)] = [text]

    # -- forwarders and filters
    for folder in ("va", "vad", "vf"):
        w.dir(folder)
    fw = {
        main: (
            f"info@{main}: {user}@example.org\n"
            f'sales@{main}: info@{main},"|/home/{user}/bin/pipe.php"\n'
            "*: :fail: No Such User Here\n",
            "",
            f'# Exim filter\nif\n $header_subject: contains "[SPAM]"\nthen\n'
            f' save "/home/{user}/mail/{main}/info/.Junk/" 660\nendif\n',
        ),
        addon: (f"orders@{addon}: sales@{main}\n*: admin@{addon}\n", f"{addon}: {main}\n", ""),
        parked: ("*: :fail: No Such User Here\n", "", ""),
    }
    for domain, (va, vad, vf) in fw.items():
        pieces = []
        for folder, content in (("va", va), ("vad", vad), ("vf", vf)):
            w.text(f"{folder}/{domain}", content, part=("forwarders_filters", domain))
            if content:
                pieces.append(content)
        m.texts[("forwarders_filters", domain)] = pieces

    # -- cron
    w.dir("cron")
    cron = (
        'MAILTO=""\nSHELL="/bin/bash"\n'
        f"*/15 * * * * /usr/local/bin/php /home/{user}/public_html/wp-cron.php >/dev/null 2>&1\n"
        f"30 3 * * 0 /home/{user}/bin/weekly-report.sh --to 'owner@{main}' # odd: %% and \"quotes\"\n"
    )
    w.text(f"cron/{user}", cron, part=("cron", ""))
    m.texts[("cron", "")] = [cron]

    # -- databases and users
    dbs = _databases(user, rng, seed)
    grants = ["-- cPanel mysql backup\n"]
    auth: dict[str, Any] = {}
    db_users = {
        user: ["localhost"],
        f"{user}_wp": ["localhost", "127.0.0.1"],
        f"{user}_shop": ["localhost"],
        f"{user}_ro": ["%"],
    }
    rights = {
        user: list(dbs),
        f"{user}_wp": [f"{user}_wp"],
        f"{user}_shop": [f"{user}_shop"],
        f"{user}_ro": [f"{user}_shop"],
    }
    for db_user, hosts in db_users.items():
        secret = _mysql_hash(rng)
        m.secrets.append(secret)
        auth[db_user] = {host: {"pass": secret, "plugin": "mysql_native_password"} for host in hosts}
        for host in hosts:
            lines = [f"GRANT USAGE ON *.* TO '{db_user}'@'{host}' IDENTIFIED BY PASSWORD '{secret}';\n"]
            for db in rights[db_user]:
                priv = "SELECT" if db_user.endswith("_ro") else "ALL PRIVILEGES"
                lines.append(
                    f"GRANT {priv} ON `{db.replace('_', chr(92) + '_')}`.* TO '{db_user}'@'{host}';\n"
                )
            for line in lines:
                grants.append(line)
                m.add_part("db_users", db_user, len(line.encode()))
    w.text("mysql.sql", "".join(grants), mode=0o600)
    w.text("mysql.sql-auth.json", json.dumps(auth, sort_keys=True), mode=0o600)
    w.dir("mysql")
    w.dir("mysql-timestamps")
    for db, (tables, odd) in dbs.items():
        w.text(
            f"mysql/{db}.create",
            f"CREATE DATABASE `{db}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci */;\n",
            part=("databases", db),
        )
        w.text(f"mysql/{db}.sql", _mysqldump(db, tables), part=("databases", db))
        w.text(f"mysql-timestamps/{db}", str(BASE_TIME - 3600), part=("databases", db))
        m.db_rows[db] = {table: len(rows) for table, _, rows in tables}
        m.db_odd_values[db] = [s for s in odd if s]
    w.dir("psql")

    # -- SSL
    tls_domains = (main, addon)
    if legacy_ssl:
        w.dir("sslcerts")
        w.dir("sslkeys")
    else:
        w.dir("apache_tls")
    for domain in tls_domains:
        key, cert, ca = tls_material(seed, domain)
        m.secrets.append(key.splitlines()[1])
        if legacy_ssl:
            w.text(f"sslcerts/{domain}.crt", cert, part=("ssl", domain))
            w.text(f"sslkeys/{domain}.key", key, part=("ssl", domain), mode=0o600)
        else:
            w.text(f"apache_tls/{domain}", key + cert + ca, part=("ssl", domain), mode=0o600)
    w.dir("domainkeys")
    w.dir("domainkeys/public")
    w.dir("domainkeys/private")
    dkim_key, _, _ = tls_material(seed, main)
    w.text(f"domainkeys/private/{main}", dkim_key, mode=0o600)
    w.text(
        f"domainkeys/public/{main}",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg\n-----END PUBLIC KEY-----\n",
    )

    # -- other folders cPanel writes, often empty
    for folder in (
        "logs",
        "bandwidth",
        "meta",
        "suspended",
        "locale",
        "mm",
        "counters",
        "resellerconfig",
        "ips",
        "ssldomain",
    ):
        w.dir(folder)
    w.file(f"logs/{main}-Jul-2024.gz", gzip.compress(text_blob(rng, seed, 3000), mtime=0))
    w.text("meta/homedir_paths", f"/home/{user}\n")


def _write_home(w: _Writer, user: str, rng: random.Random, seed: int, scale: float) -> None:
    m = w.m
    d = m.domains
    main, addon = d["main"], d["addon"]
    t = BASE_TIME - 86400
    w.dir("homedir", mode=0o711)
    w.text("homedir/.bashrc", "# .bashrc\nif [ -f /etc/bashrc ]; then . /etc/bashrc; fi\n")
    w.text("homedir/.bash_profile", "# .bash_profile\nPATH=$PATH:$HOME/bin\nexport PATH\n")
    w.text("homedir/.contactemail", f"owner@{main}\n")
    w.file("homedir/.hushlogin", b"")
    w.dir("homedir/.cpanel")
    w.text("homedir/.cpanel/nvdata.yaml", "---\nxmainwindow: 1\n")
    w.dir("homedir/.htpasswds", mode=0o750)
    w.dir("homedir/.trash", mode=0o700)  # empty folder
    w.dir("homedir/tmp")  # empty folder
    w.symlink("homedir/access-logs", f"/usr/local/apache/domlogs/{user}")
    w.symlink("homedir/www", "public_html")

    # web sites
    w.dir("homedir/public_html", mode=0o750)
    index = f"<?php\n/* {main} front page */\ndefine('WP_USE_THEMES', true);\n"
    index += "require __DIR__ . '/wp-blog-header.php';\n"
    w.text("homedir/public_html/index.php", index, mtime=t)
    w.hardlink("homedir/public_html/index-copy.php", "homedir/public_html/index.php")
    w.text(
        "homedir/public_html/.htaccess",
        "# BEGIN WordPress\nRewriteEngine On\nRewriteRule ^index\\.php$ - [L]\n# END WordPress\n",
    )
    w.text(
        "homedir/public_html/wp-config.php",
        f"<?php\ndefine('DB_NAME', '{user}_wp');\ndefine('DB_USER', '{user}_wp');\n",
    )
    w.dir("homedir/public_html/cgi-bin")  # empty folder
    w.dir("homedir/public_html/blog")
    w.dir("homedir/public_html/css")
    w.dir("homedir/public_html/js")
    w.dir("homedir/public_html/wp-content")
    w.dir("homedir/public_html/wp-content/uploads")
    w.dir(f"homedir/{addon}")
    w.text(f"homedir/{addon}/index.html", "<html><body>shop</body></html>\n")
    n_pages = max(1, round(10 * scale))
    n_images = max(1, round(6 * scale))
    for i in range(n_pages):
        folder = ("blog", "css", "js")[i % 3]
        ext = ("html", "css", "js")[i % 3]
        w.file(
            f"homedir/public_html/{folder}/page-{i:05d}.{ext}",
            text_blob(rng, seed, rng.randint(2000, 40000)),
            mtime=t + i,
        )
    months: set[str] = set()
    for i in range(n_images):
        month = f"homedir/public_html/wp-content/uploads/2024/{1 + i % 12:02d}"
        if month not in months:
            if not months:
                w.dir("homedir/public_html/wp-content/uploads/2024")
            months.add(month)
            w.dir(month)
        w.file(f"{month}/image-{i:05d}.jpg", random_blob(rng, rng.randint(10000, 120000)), mtime=t + i)
    if scale >= 20:
        w.dir("homedir/backups")
        for i in range(max(1, round(scale / 40))):
            w.file(f"homedir/backups/site-{i:03d}.zip", random_blob(rng, rng.randint(2, 12) << 20))
    # files of a few sizes around the 512-byte block
    w.dir("homedir/sizes")
    for size in (1, 511, 512, 513, 1 << 20 | 1):
        w.file(f"homedir/sizes/bytes-{size}", random_blob(rng, size))

    # odd names
    w.dir("homedir/odd")
    for name in (
        "with space.txt",
        "new\nline.txt",
        "latin1-\udce9t\udce9.txt",  # bytes b"latin1-\xe9t\xe9.txt": not UTF-8
        "unicod\u00e9-\u65e5\u672c\u8a9e.txt",
        "-leading-dash",
        "x" * 150 + ".txt",  # GNU ././@LongLink
        "tab\tand\\backslash",
        "quote'\"names",
    ):
        w.text(f"homedir/odd/{name}", f"odd name {name!r}\n")
    deep = "homedir/odd/" + "/".join(["deep-folder-name-" + "d" * 30] * 4)
    parts = deep.split("/")
    for i in range(3, len(parts) + 1):
        w.dir("/".join(parts[:i]))
    w.text(deep + "/file-at-the-bottom.txt", "deep\n")
    w.symlink("homedir/odd/long-target-link", "../" + "t" * 120 + "/target")

    # mail
    w.dir("homedir/etc", mode=0o750)
    w.dir("homedir/mail", mode=0o751)
    for sub in ("cur", "new", "tmp"):
        w.dir(f"homedir/mail/{sub}", mode=0o700)
    w.file(
        "homedir/mail/cur/1720000000.M1P1.server,S=900:2,S", _message(rng, seed, f"{user}@{main}", 1, False)
    )
    w.dir("homedir/mail/.Sent", mode=0o700)
    for sub in ("cur", "new", "tmp"):
        w.dir(f"homedir/mail/.Sent/{sub}", mode=0o700)
    boxes = {main: ["info", "sales", "empty"], addon: ["admin"]}
    n_msgs = max(1, round(8 * scale))
    for domain, names in boxes.items():
        w.dir(f"homedir/etc/{domain}", mode=0o750)
        passwd, shadow, quota = [], [], []
        for box in names:
            passwd.append(f"{box}:x:1001:1001::/home/{user}/mail/{domain}/{box}:/home/{user}\n")
            secret = _hash(rng)
            m.secrets.append(secret)
            shadow.append(f"{box}:{secret}:19800::::::\n")
            quota.append(f"{box}:{1 << 30}\n")
            m.parts.setdefault(("email_accounts", f"{box}@{domain}"), 0)
        w.text(f"homedir/etc/{domain}/passwd", "".join(passwd))
        w.text(f"homedir/etc/{domain}/shadow", "".join(shadow), mode=0o640)
        w.text(f"homedir/etc/{domain}/quota", "".join(quota))
        w.dir(f"homedir/mail/{domain}", mode=0o751)
        for box in names:
            if box == "empty":
                continue  # an account with no Maildir yet
            base = f"homedir/mail/{domain}/{box}"
            key = ("email_accounts", f"{box}@{domain}")
            w.dir(base, mode=0o751)
            for folder in ("", ".Sent", ".Trash"):
                root = f"{base}/{folder}" if folder else base
                if folder:
                    w.dir(root, mode=0o700)
                for sub in ("cur", "new", "tmp"):
                    w.dir(f"{root}/{sub}", mode=0o700)
            for i in range(n_msgs):
                msg = _message(rng, seed, f"{box}@{domain}", i, attach=i % 4 == 3)
                folder = (".Sent/cur", "cur", "new", ".Trash/cur")[i % 4]
                flag = "" if folder == "new" else ":2,S"
                w.file(
                    f"{base}/{folder}/{BASE_TIME - i * 977}.M{i}P{i * 7}.server,S={len(msg)}{flag}",
                    msg,
                    part=key,
                    mode=0o600,
                )
            w.text(f"{base}/maildirsize", "1073741824S\n", part=key)
            w.text(f"{base}/dovecot-uidlist", f"3 V{BASE_TIME} N{n_msgs + 1}\n", part=key)

    # ssl storage inside the home folder
    w.dir("homedir/ssl", mode=0o755)
    w.dir("homedir/ssl/certs")
    w.dir("homedir/ssl/keys", mode=0o700)
    key_pem, cert, _ = tls_material(seed, main)
    w.text(f"homedir/ssl/certs/{main.replace('.', '_')}_a1b2c_d3e4f_1735689599_abcdef.crt", cert)
    w.text("homedir/ssl/keys/a1b2c_d3e4f_0123456789abcdef.key", key_pem, mode=0o600)

    # what the caller asked for: raw names (bytes that need not be UTF-8), folders first
    for raw, data in w.extra_home:
        rel = "homedir/" + raw.decode(ENCODING, ERRORS)
        if data is None:
            w.dir(rel)
        else:
            w.file(rel, data)


# -- archives ----------------------------------------------------------------------------------
