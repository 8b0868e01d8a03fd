"""`python -m plugins.listrak.sandbox [--port 8900]`: serve the Listrak sandbox."""

import sys

from plugins.listrak.sandbox import main

sys.exit(main())
