"""How fast the synthetic suite is generated (no cache): clips/s per dataset.

    python benchmarks/synthetic_generation.py            # 1000 clips each, default 16x48x48

Target (issue 3): 1,000 clips of the default geometry in <= 10 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time

from tokbench.data.synthetic import SYNTHETIC, generate_split

TARGET_S = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if any dataset takes > {TARGET_S:g} s per 1000 clips")
    args = parser.parse_args(argv)
    print(f"# {args.clips} clips of {args.frames}x{args.size}x{args.size}, one process, no cache")
    print(f"{'dataset':<18} {'seconds':>8} {'ms/clip':>8} {'s/1000 clips':>13}")
    worst = 0.0
    for name in SYNTHETIC:
        t0 = time.perf_counter()
        generate_split(name, "train", frames=args.frames, size=args.size, seed=0, num_clips=args.clips)
        dt = time.perf_counter() - t0
        per_1000 = dt / args.clips * 1000
        worst = max(worst, per_1000)
        mark = "ok" if per_1000 <= TARGET_S else "SLOW"
        print(f"{name:<18} {dt:>8.2f} {dt / args.clips * 1e3:>8.2f} {per_1000:>13.2f}  {mark}")
    print(f"# slowest: {worst:.2f} s per 1000 clips (target <= {TARGET_S:g} s)")
    return 1 if args.check and worst > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
