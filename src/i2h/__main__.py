"""`python -m i2h` runs the CLI."""
import sys

from .cli import main

sys.exit(main())
