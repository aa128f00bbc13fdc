"""Image verbs: pull, images, image inspect (rmi, tag, save, load, push... join them here)."""

from __future__ import annotations

import argparse

from ..engine import Engine
from .common import out, print_inspect, progress

IMAGES_COLUMNS = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                  ("CREATED", "CreatedSince"), ("SIZE", "Size")]
IMAGES_DIGEST_COLUMNS = [*IMAGES_COLUMNS[:2], ("DIGEST", "Digest"), *IMAGES_COLUMNS[2:]]


def cmd_pull(engine: Engine, args: argparse.Namespace) -> int:
    from ..image.reference import parse_reference

    reference = parse_reference(args.image)
    engine.images.pull(args.image, platform=args.platform, progress=progress(args.quiet))
    out(str(reference))  # Docker prints the fully qualified reference last, -q or not
    return 0


def cmd_images(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import image_rows

    rows = [row for record in engine.images.list() for row in image_rows(record, trunc=not args.no_trunc)]
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        out("\n".join(seen))
        return 0
    from .output import render

    columns = IMAGES_DIGEST_COLUMNS if args.digests else IMAGES_COLUMNS
    out(render(rows, columns, args.format))
    return 0


def cmd_image_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import inspect_image

    return print_inspect([inspect_image(engine.images.inspect(name)) for name in args.names], args.format)




def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="Download an image from a registry")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform")
    p.add_argument("image")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("images", help="List images")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.set_defaults(func=cmd_images)

    image = sub.add_parser("image", help="Manage images")
    image_sub = image.add_subparsers(dest="image_command", metavar="COMMAND")
    image_sub.required = True
    p = image_sub.add_parser("inspect", help="Display detailed information on one or more images")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_image_inspect)
