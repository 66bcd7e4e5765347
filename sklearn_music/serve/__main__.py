"""``python -m sklearn_music.serve --store tracks.db ...``: the ``serve`` subcommand alone."""

import argparse
import sys

from ._cli import add_serve_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sklearn_music.serve")
    sub = add_serve_parser(parser.add_subparsers(dest="command"))
    args = sub.parse_args(sys.argv[1:])
    sys.exit(args.func(args))
