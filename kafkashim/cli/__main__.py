"""``python -m kafkashim.cli``: the ``kafkashim`` command without the console script."""

from kafkashim.cli import main

if __name__ == "__main__":
    main()
