"""``python -m databus`` is the ``databus`` command."""

from databus.cli import main

main()
