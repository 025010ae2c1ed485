"""The README's main job: `oclcore demo` trains to the accuracy bar on the default device."""

import re
import subprocess
import sys


def test_demo_reaches_accuracy_bar():
    out = subprocess.run([sys.executable, "-m", "oclcore", "demo", "--epochs", "3", "--no-cpu-reference"],
                         capture_output=True, text=True, timeout=1200)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    acc = float(re.search(r"test accuracy ([0-9.]+)%", out.stdout).group(1))
    assert acc >= 95.0, out.stdout
    assert "fallback" not in out.stdout, out.stdout  # every op of the training ran on the device
    assert "s per epoch" in out.stdout
