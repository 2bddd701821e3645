"""`python -m roster_pipeline.cli`: the same as the `roster-pipeline` command."""

import sys

from roster_pipeline.cli import main

sys.exit(main())
