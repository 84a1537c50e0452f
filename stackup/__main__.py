"""`python -m stackup` behaves as the `stackup` command."""

from stackup.cli.entry import main

main()
