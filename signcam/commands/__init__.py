"""One module per ``signcam`` subcommand: ``add_arguments(parser)`` and ``main(args)``."""
