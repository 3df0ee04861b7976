"""``python -m codon_sdk`` is the ``codon`` command."""

import sys

from codon_sdk.cli import main

sys.exit(main())
