"""`python -m benchmarks [--quick] [--only NAME[,NAME]] [--json PATH] [--reps N]`."""
import sys

from .suite import main

if __name__ == "__main__":
    sys.exit(main())
