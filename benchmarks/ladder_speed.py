"""Standard vs Ladder vs parallel-block vs no-communication decoding throughput, tensor-parallel on local processes.

Run by hand (never timed in tests), e.g.::

    .venv/bin/python benchmarks/ladder_speed.py --tp 2 --d-model 512 --latency-us 0 100 1000 --batch 1 8

Each latency is a modelled link (``--gbps`` bandwidth) over real gloo collectives; "free" (no
communication cost) and "bare gloo" are always included. Prints decode tokens/s and speed-ups.
"""

from __future__ import annotations

import argparse

from companion import comm, lm
from companion.ladder.speed import FREE_NETWORK, measure_speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tp", type=int, default=2, help="tensor-parallel degree (processes)")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--latency-us", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--gbps", type=float, default=10.0, help="modelled bandwidth, Gbit/s")
    parser.add_argument("--n-new", type=int, default=32, help="decode steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cfg = lm.GPTConfig(vocab_size=32, seq_len=64, d_model=args.d_model, n_layers=args.n_layers,
                       n_heads=args.n_heads)
    settings = {"free": FREE_NETWORK, "bare gloo": None}
    settings.update({f"{lat:g} us": comm.Link.from_gbps(lat * 1e-6, args.gbps) for lat in args.latency_us})
    result = measure_speed(cfg, settings, tp_size=args.tp, batch_sizes=tuple(args.batch), prompt_len=16,
                           n_new=args.n_new, repeats=args.repeats, timeout_s=600)
    print(f"{'setting':>12} {'batch':>5} {'std tok/s':>10} {'ladder':>8} {'parallel':>8} {'no-comm':>8} "
          f"{'ladder x':>9} {'parallel x':>10} {'no-comm x':>9}")
    for name in settings:
        for b in args.batch:
            std, lad, par, free = (result.get(name, v, b) for v in ("standard", "ladder", "parallel", "no-comm"))
            print(f"{name:>12} {b:>5} {std.decode_tokens_per_s:>10.1f} {lad.decode_tokens_per_s:>8.1f} "
                  f"{par.decode_tokens_per_s:>8.1f} {free.decode_tokens_per_s:>8.1f} {lad.decode_speedup:>9.2f} "
                  f"{par.decode_speedup:>10.2f} {free.decode_speedup:>9.2f}")


if __name__ == "__main__":
    main()
