"""``python -m preflm``: the same command line as ``preflm``."""

from preflm.cli import main

main()
