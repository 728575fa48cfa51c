import os
import sys

# tests/util.py is imported as `util` by the test modules
sys.path.insert(0, os.path.dirname(__file__))
