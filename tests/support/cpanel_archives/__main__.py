"""Deterministic generator of cPanel account archives and destination trees, for tests and benchmarks.

python -m tests.support.cpanel_archives OUT_DIR --accounts 3 --layout all --seed 0 --size-scale 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.support.cpanel_archives.archive import make_account_archive
from tests.support.cpanel_archives.trees import LAYOUTS, make_destination_tree


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir")
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--layout", choices=LAYOUTS, default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size-scale", type=float, default=0.2)
    parser.add_argument("--single", metavar="USER", help="write only one WHM archive for USER into OUT_DIR")
    args = parser.parse_args(argv)
    if args.single:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        made = make_account_archive(args.out_dir, args.single, seed=args.seed, size_scale=args.size_scale)
        print(f"{made.path}\t{made.path.stat().st_size}\t{made.uncompressed_size}\t{len(made.members)}")
        return
    for entry in make_destination_tree(
        args.out_dir, accounts=args.accounts, layout=args.layout, seed=args.seed, size_scale=args.size_scale
    ):
        print(f"{entry.layout}\t{entry.user}\t{entry.path}" + ("\tincomplete" if entry.incomplete else ""))


if __name__ == "__main__":
    main()
