"""``python -m deeplab_ref``: see ``deeplab_ref.cli``."""

import sys

from deeplab_ref.cli import main

sys.exit(main())
