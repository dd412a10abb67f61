import sys

from signcam.cli import main

sys.exit(main())
