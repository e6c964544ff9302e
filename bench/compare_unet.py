#!/usr/bin/python3
"""Runs the same U-Net (same spec, threads and input) through Tessera's C++ path and through
Python PyTorch (Debian's python3-torch, the same LibTorch version) in one run, and prints
slices/s, the C++/Python ratio and achieved GFLOP/s as a fraction of this CPU's peak
(AVX2 FMA: 32 FP32 FLOP/cycle/core x cores x clock, the clock measured under load when the
cores boost above the nominal one).

usage: bench/compare_unet.py BUILD/bench/tessera_bench_unet [--threads N] [--batch B]
       [--size H W] [--base F] [--depth D] [--iters N] [--json OUT]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from unet_pytorch import UNet  # noqa: E402


def conv_flops(cin, cout, k, pixels):
    return 2.0 * cin * cout * k * k * pixels


def forward_flops(h, w, in_ch, classes, base, depth):
    """Multiply-adds x2 of every convolution for one slice (pooling, ReLU, cat are noise)."""
    flops, cin = 0.0, in_ch
    feats = [base << l for l in range(depth)]
    for l, f in enumerate(feats):
        px = (h >> l) * (w >> l)
        flops += conv_flops(cin, f, 3, px) + conv_flops(f, f, 3, px)
        cin = f
    for l in range(depth - 2, -1, -1):
        f, px_in, px = feats[l], (h >> (l + 1)) * (w >> (l + 1)), (h >> l) * (w >> l)
        flops += 2.0 * (2 * f) * f * 4 * px_in  # transposed 2x2, stride 2
        flops += conv_flops(2 * f, f, 3, px) + conv_flops(f, f, 3, px)
    return flops + conv_flops(feats[0], classes, 1, h * w)


def clock_ghz():
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6
    except OSError:
        pass
    with open("/proc/cpuinfo") as f:
        mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
    return max(mhz) / 1000.0


def python_run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = UNet(2, 1, 2, args.base, args.depth, "batch")
    x = torch.randn(args.batch, 1, args.size[0], args.size[1])
    y = (torch.rand(args.batch, args.size[0], args.size[1]) > 0.5).long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    net.train()
    for _ in range(args.warmup):
        train_step()
    t = time.perf_counter()
    for _ in range(args.iters):
        train_step()
    train_s = time.perf_counter() - t

    net.eval()
    with torch.inference_mode():
        for _ in range(args.warmup):
            net(x)
        t = time.perf_counter()
        for _ in range(args.iters):
            torch.softmax(net(x), 1)
        infer_s = time.perf_counter() - t
    n = args.batch * args.iters
    return {"train_slices_per_s": n / train_s, "infer_slices_per_s": n / infer_s}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, nargs=2, default=[128, 128])
    p.add_argument("--base", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="also write all numbers to this file")
    args = p.parse_args()

    cpp_cmd = [args.binary, "--threads", str(args.threads), "--batch", str(args.batch), "--size",
               str(args.size[0]), str(args.size[1]), "--base", str(args.base), "--depth", str(args.depth),
               "--iters", str(args.iters), "--warmup", str(args.warmup)]
    cpp = json.loads(subprocess.run(cpp_cmd, check=True, capture_output=True, text=True).stdout)
    py = python_run(args)

    # The higher of the nominal clock and the one measured under load: a boosting core would
    # otherwise make the peak fractions look better than they are.
    nominal_ghz = clock_ghz()
    ghz = max(nominal_ghz, cpp.get("clock_ghz", 0.0))
    peak = 32.0 * args.threads * ghz * 1e9
    fwd = forward_flops(args.size[0], args.size[1], 1, 2, args.base, args.depth)
    rows = []
    for phase, flops_per_slice in (("train", 3 * fwd), ("infer", fwd)):
        c, q = cpp[f"{phase}_slices_per_s"], py[f"{phase}_slices_per_s"]
        rows.append({"phase": phase, "cpp_slices_per_s": c, "python_slices_per_s": q, "ratio": c / q,
                     "cpp_gflops": c * flops_per_slice / 1e9, "python_gflops": q * flops_per_slice / 1e9,
                     "cpp_peak_fraction": c * flops_per_slice / peak,
                     "python_peak_fraction": q * flops_per_slice / peak})
    print(f"U-Net 2D base {args.base} depth {args.depth}, batch {args.batch} x {args.size[0]}x{args.size[1]}, "
          f"{args.threads} thread(s); peak {peak / 1e9:.1f} GFLOP/s (32 FLOP/cycle/core x {args.threads} x "
          f"{ghz:.2f} GHz measured under load, nominal {nominal_ghz:.2f}); torch {torch.__version__}")
    print(f"{'phase':<7}{'C++ sl/s':>10}{'Py sl/s':>10}{'C++/Py':>8}{'C++ GF/s':>10}{'% peak':>8}{'Py GF/s':>9}{'% peak':>8}")
    for r in rows:
        print(f"{r['phase']:<7}{r['cpp_slices_per_s']:>10.1f}{r['python_slices_per_s']:>10.1f}{r['ratio']:>7.2f}x"
              f"{r['cpp_gflops']:>10.1f}{100 * r['cpp_peak_fraction']:>7.1f}%{r['python_gflops']:>9.1f}"
              f"{100 * r['python_peak_fraction']:>7.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "clock_ghz": ghz, "nominal_clock_ghz": nominal_ghz, "peak_gflops": peak / 1e9, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
