"""``python -m covetd``: the same as the ``covetd`` console script."""

from covetd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
