import os
import subprocess
import sys

import tt_xla

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tt_xla.__file__)))


def test_demo_runs():
    env = dict(os.environ, TT_XLA_DEMO_SMALL="1")
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "tt_xla", "demo", "--runs", "3"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "max abs error" in out and "kernels launched" in out and "modeled device time" in out
    assert "OK" in out
