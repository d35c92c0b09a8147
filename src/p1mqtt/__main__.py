"""`python -m p1mqtt` runs the command-line program."""

from p1mqtt.cli import main

raise SystemExit(main())
