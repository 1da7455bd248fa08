import sys

from scalefree.cli import main

sys.exit(main())
