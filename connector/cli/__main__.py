"""`python -m connector.cli …` is `connector …`."""

import sys

from connector.cli import main

sys.exit(main())
