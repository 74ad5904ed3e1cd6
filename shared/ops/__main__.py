import sys

from shared.ops import main

sys.exit(main())
