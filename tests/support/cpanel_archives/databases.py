"""The account's MySQL databases as mysqldump writes them: tables, rows (odd strings included) and the
dump text.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from tests.support.cpanel_archives.content import BASE_TIME, ODD_STRINGS, Table, _hash, text_blob


def sql_quote(value: object) -> str:
    """A value as mysqldump writes it."""
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    for raw, esc in (
        ("\\", "\\\\"),
        ("'", "\\'"),
        ('"', '\\"'),
        ("\0", "\\0"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\x1a", "\\Z"),
    ):
        text = text.replace(raw, esc)
    return f"'{text}'"


# -- the manifest ------------------------------------------------------------------------------


def _mysqldump(db: str, tables: list[Table]) -> str:
    out = [
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n",
        f"-- Host: localhost    Database: {db}\n",
        "-- ------------------------------------------------------\n",
        "-- Server version\t10.11.6-MariaDB-0+deb12u1\n\n",
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n",
        "/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;\n",
        "/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n",
        "/*!40101 SET NAMES utf8mb4 */;\n",
        "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n",
        "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n",
        "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n",
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n",
        "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n",
    ]
    for table, create, rows in tables:
        out.append(f"\n--\n-- Table structure for table `{table}`\n--\n\n")
        out.append(f"DROP TABLE IF EXISTS `{table}`;\n")
        out.append("/*!40101 SET @saved_cs_client     = @@character_set_client */;\n")
        out.append("/*!40101 SET character_set_client = utf8 */;\n")
        out.append(
            f"CREATE TABLE `{table}` (\n{create}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            " COLLATE=utf8mb4_unicode_ci;\n"
        )
        out.append("/*!40101 SET character_set_client = @saved_cs_client */;\n")
        out.append(f"\n--\n-- Dumping data for table `{table}`\n--\n\n")
        out.append(f"LOCK TABLES `{table}` WRITE;\n/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;\n")
        for start in range(0, len(rows), 50):  # extended inserts, several statements per table
            values = ",".join(
                "(" + ",".join(sql_quote(v) for v in row) + ")" for row in rows[start : start + 50]
            )
            out.append(f"INSERT INTO `{table}` VALUES {values};\n")
        out.append(f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;\nUNLOCK TABLES;\n")
    out.append(
        "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
        "/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        "/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n"
        "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n"
        "/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;\n"
        "/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;\n"
        "/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n"
        "-- Dump completed on 2024-07-04  2:00:01\n"
    )
    return "".join(out)


def _date(rng: random.Random) -> str:
    moment = datetime.fromtimestamp(BASE_TIME - rng.randrange(0, 86400 * 700), UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _databases(user: str, rng: random.Random, seed: int) -> dict[str, tuple[list[Table], list[str]]]:
    odd = ODD_STRINGS
    options = [
        (
            i + 1,
            f"option_{i}",
            odd[i % len(odd)] if i % 3 == 0 else text_blob(rng, seed, 40).decode(),
            "yes" if i % 2 else "no",
        )
        for i in range(80)
    ]
    options[0] = (1, "siteurl", f"https://{user}site.com", "yes")
    posts = [
        (
            i + 1,
            1,
            _date(rng),
            text_blob(rng, seed, rng.randint(200, 1500)).decode() + (odd[i % len(odd)] if i % 4 == 0 else ""),
            f"Post {i} {odd[(i + 3) % len(odd)]}",
            "publish" if i % 5 else "draft",
            f"post-{i}",
        )
        for i in range(120)
    ]
    users = [
        (i + 1, f"user{i}", _hash(rng), f"user{i}@example.org", _date(rng), odd[i % len(odd)])
        for i in range(30)
    ]
    products = [
        (
            i + 1,
            f"SKU-{i:05d}",
            f"Product {i} {odd[i % len(odd)]}",
            round(rng.uniform(1, 500), 2),
            rng.randint(0, 900),
            _date(rng),
        )
        for i in range(100)
    ]
    orders = [
        (
            i + 1,
            rng.randint(1, 100),
            round(rng.uniform(5, 900), 2),
            _date(rng),
            None if i % 7 == 0 else f"note {odd[i % len(odd)]}",
        )
        for i in range(60)
    ]

    def cols(*lines: str) -> str:
        return ",\n".join("  " + line for line in lines)

    wp: list[Table] = [
        (
            "wp_options",
            cols(
                "`option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`option_name` varchar(191) NOT NULL DEFAULT ''",
                "`option_value` longtext NOT NULL",
                "`autoload` varchar(20) NOT NULL DEFAULT 'yes'",
                "PRIMARY KEY (`option_id`)",
                "UNIQUE KEY `option_name` (`option_name`)",
            ),
            options,
        ),
        (
            "wp_posts",
            cols(
                "`ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`post_author` bigint(20) unsigned NOT NULL DEFAULT 0",
                "`post_date` datetime NOT NULL DEFAULT '0000-00-00 00:00:00'",
                "`post_content` longtext NOT NULL",
                "`post_title` text NOT NULL",
                "`post_status` varchar(20) NOT NULL DEFAULT 'publish'",
                "`post_name` varchar(200) NOT NULL DEFAULT ''",
                "PRIMARY KEY (`ID`)",
                "KEY `post_name` (`post_name`(191))",
            ),
            posts,
        ),
        (
            "wp_users",
            cols(
                "`ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`user_login` varchar(60) NOT NULL DEFAULT ''",
                "`user_pass` varchar(255) NOT NULL DEFAULT ''",
                "`user_email` varchar(100) NOT NULL DEFAULT ''",
                "`user_registered` datetime NOT NULL DEFAULT '0000-00-00 00:00:00'",
                "`display_name` varchar(250) NOT NULL DEFAULT ''",
                "PRIMARY KEY (`ID`)",
            ),
            users,
        ),
    ]
    shop: list[Table] = [
        (
            "products",
            cols(
                "`id` int(11) NOT NULL AUTO_INCREMENT",
                "`sku` varchar(32) NOT NULL",
                "`name` varchar(255) NOT NULL",
                "`price` decimal(10,2) NOT NULL",
                "`stock` int(11) NOT NULL DEFAULT 0",
                "`created` datetime NOT NULL",
                "PRIMARY KEY (`id`)",
                "UNIQUE KEY `sku` (`sku`)",
            ),
            products,
        ),
        (
            "orders",
            cols(
                "`id` int(11) NOT NULL AUTO_INCREMENT",
                "`product_id` int(11) NOT NULL",
                "`total` decimal(10,2) NOT NULL",
                "`placed` datetime NOT NULL",
                "`note` text DEFAULT NULL",
                "PRIMARY KEY (`id`)",
            ),
            orders,
        ),
    ]
    return {f"{user}_wp": (wp, odd), f"{user}_shop": (shop, odd), f"{user}_empty": ([], [])}
