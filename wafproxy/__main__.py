import sys

from wafproxy.cli import main

sys.exit(main())
