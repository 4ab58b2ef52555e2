"""Time loading the default model: the first load converts the GGUF once, later loads read the cache.

python benchmarks/load_time.py            # a fresh interpreter per load, as a user would see it
"""

from __future__ import annotations

import subprocess
import sys
import time

CODE = "from mixsd import models; models.load('smollm2-135m')"


def main() -> None:
    for i in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True)
        print(f"load {i + 1} (incl. python + imports): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
