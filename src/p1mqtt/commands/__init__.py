"""The subcommands of the ``p1mqtt`` command line, one module each."""
