#!/usr/bin/python3
"""Runs the same U-Net (same spec, input shape and thread count) through Tessera's C++ path and
the peers a user would pick instead, in one run, and prints one table:

  Tessera C++          build/bench/tessera_bench_unet (training steps, and the InferenceNetwork
                       that `tessera predict` uses)
  PyTorch eager        bench/unet_pytorch.py as a Python user writes it (NCHW, eval() +
                       inference_mode for inference), Debian's python3-torch
  PyTorch best effort  inference: torch.jit.freeze(torch.jit.script or .trace(model.eval())) +
                       torch.jit.optimize_for_inference, NCHW or channels-last, under
                       inference_mode (all four timed, the fastest kept); training: eager, NCHW
                       or channels-last (the faster)
  ONNX Runtime         the same network exported with torch.onnx.export, run by npm's
                       onnxruntime-node on its CPU execution provider (bench/ort/run_ort.mjs)

Every inference path ends in a softmax over classes, as `tessera predict` does. Peak FP32 FLOP/s
comes from the instruction set /proc/cpuinfo reports and a clock whose source is printed (see
peak_flops_per_cycle and clock_ghz); where either is unknown, "peak unknown" is printed instead
of a figure.

usage: /usr/bin/python3 bench/compare_unet.py [BUILD/bench/tessera_bench_unet] [--threads N]
       [--batch B] [--size H W] [--base F] [--depth D] [--iters N] [--warmup N] [--repeats R]
       [--rows tessera,eager,best,ort] [--clock-ghz X] [--json OUT]

Rows whose tool is missing (no bench binary, no node or onnxruntime-node) are reported as
skipped, with the reason, and the others still run. The ONNX Runtime row needs, once:
`cd bench/ort && npm install --ignore-scripts` (the version is pinned in bench/ort/package.json;
--ignore-scripts skips the GPU-library download, the CPU library ships in the package).
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import torch  # noqa: E402
from unet_pytorch import UNet  # noqa: E402

ROWS = {"tessera": "Tessera C++", "eager": "PyTorch eager", "best": "PyTorch best effort", "ort": "ONNX Runtime"}


# ---------------------------------------------------------------------------------------------
# Work per slice


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


# ---------------------------------------------------------------------------------------------
# Peak: instruction set x clock, each with its source


def cpuinfo():
    """The first processor's fields of /proc/cpuinfo, and the highest "cpu MHz" of all."""
    info, mhz = {}, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    continue
                key, value = (s.strip() for s in line.split(":", 1))
                if key == "cpu MHz":
                    try:
                        mhz.append(float(value))
                    except ValueError:
                        pass
                info.setdefault(key, value)
    except OSError:
        pass
    info["_max_mhz"] = max(mhz) if mhz else None
    return info


def peak_flops_per_cycle(info):
    """FP32 FLOP per cycle per core from the ISA flags, and the assumption behind it; (None, why)
    when the flags say nothing usable. An FMA counts as 2 FLOP."""
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id", "")
    try:
        family = int(info.get("cpu family", "-1"))
        model = int(info.get("model", "-1"))
    except ValueError:
        family, model = -1, -1
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == 0x19:
            return 32, ("AVX-512 on AMD Zen 4 (family 0x19): 512-bit FMAs issue as two 256-bit halves, "
                        "so 2 FMA pipes x 8 lanes x 2")
        return 64, ("AVX-512: 2 FMA units x 16 lanes x 2 -- assumes two 512-bit FMA units per core "
                    "(Xeon Gold/Platinum, Zen 5); parts with one (some Xeon Silver/Bronze) do 32")
    if "avx2" in flags and "fma" in flags:
        if vendor == "AuthenticAMD" and family == 0x17 and model < 0x30:
            return 16, "AVX2+FMA on AMD Zen 1 (128-bit FMA pipes): 2 x 4 lanes x 2"
        return 32, "AVX2+FMA: 2 FMA units x 8 lanes x 2"
    if "avx" in flags:
        return 16, "AVX without FMA: one 8-lane add + one 8-lane multiply per cycle"
    if "sse2" in flags:
        return 8, "SSE2: one 4-lane add + one 4-lane multiply per cycle"
    return None, "the CPU's flags (/proc/cpuinfo) name no x86 vector ISA this script knows"


def clock_ghz(info, override=None):
    """(GHz, source) or (None, why not)."""
    if override:
        return override, "given with --clock-ghz"
    path = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        with open(path) as f:
            return int(f.read()) / 1e6, f"{path} (the highest clock cpufreq allows)"
    except (OSError, ValueError):
        pass
    if info.get("_max_mhz"):
        return info["_max_mhz"] / 1000.0, ('"cpu MHz" in /proc/cpuinfo (no cpufreq in sysfs; on a VM this is '
                                           "usually the nominal clock, below any boost)")
    m = re.search(r"@\s*([0-9.]+)\s*GHz", info.get("model name", ""))
    if m:
        return float(m.group(1)), 'the model name in /proc/cpuinfo ("@ X GHz": the nominal clock)'
    return None, "no cpufreq in sysfs, no \"cpu MHz\" and no \"@ X GHz\" in /proc/cpuinfo"


# ---------------------------------------------------------------------------------------------
# Rows


class SoftmaxHead(torch.nn.Module):
    """The network followed by the class softmax, as Tessera's inference returns."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), 1)


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t


def make_net(args):
    torch.manual_seed(1)
    return UNet(2, 1, 2, args.base, args.depth, "batch")


def train_seconds(args, memory_format, iters=None, warmup=None):
    net = make_net(args).to(memory_format=memory_format)
    x = torch.randn(args.batch, 1, args.size[0], args.size[1]).contiguous(memory_format=memory_format)
    y = (torch.rand(args.batch, args.size[0], args.size[1]) > 0.5).long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    net.train()
    return timed(step, args.warmup if warmup is None else warmup, args.iters if iters is None else iters)


class PythonPeers:
    """Both PyTorch rows. Each repeat times every best-effort variant and keeps the fastest, so
    the best-effort row is the best PyTorch offered in that repeat (the choice cannot be spoiled
    by a noisy probe; if anything it flatters PyTorch)."""

    def __init__(self, args, want_best):
        self.args = args
        torch.set_num_threads(args.threads)
        self.x = torch.randn(args.batch, 1, args.size[0], args.size[1])
        self.eager = SoftmaxHead(make_net(args)).eval()
        self.want_best = want_best
        self.variants = {}
        self.wins = {"infer": {}, "train": {}}
        self.last_eager_train = None
        if not want_best:
            return
        ref = self.infer_once(self.eager, self.x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cl in (False, True):
                fmt = torch.channels_last if cl else torch.contiguous_format
                xi = self.x.contiguous(memory_format=fmt)
                with torch.no_grad():
                    for how in ("script", "trace"):
                        m = SoftmaxHead(make_net(args)).eval().to(memory_format=fmt)
                        m = torch.jit.script(m) if how == "script" else torch.jit.trace(m, xi)
                        m = torch.jit.optimize_for_inference(torch.jit.freeze(m.eval()))
                        name = f"jit.{how}+freeze+optimize_for_inference, {'channels-last' if cl else 'NCHW'}"
                        diff = (self.infer_once(m, xi) - ref).abs().max().item()
                        if diff > 1e-3:
                            raise SystemExit(f"PyTorch best effort ({name}) differs from eager by {diff}")
                        self.variants[name] = (m, xi)

    @staticmethod
    def infer_once(m, x):
        with torch.inference_mode():
            return m(x).contiguous().clone()

    def infer_rate(self, m, x):
        with torch.inference_mode():
            s = timed(lambda: m(x), self.args.warmup, self.args.iters)
        return self.args.batch * self.args.iters / s

    def train_rate(self, memory_format):
        return self.args.batch * self.args.iters / train_seconds(self.args, memory_format)

    def eager_run(self):
        self.last_eager_train = self.train_rate(torch.contiguous_format)
        return {"train": self.last_eager_train, "infer": self.infer_rate(self.eager, self.x)}

    def best_run(self):
        def best(kind, rates):
            name = max(rates, key=rates.get)
            self.wins[kind][name] = self.wins[kind].get(name, 0) + 1
            return rates[name]

        infer = {name: self.infer_rate(m, xi) for name, (m, xi) in self.variants.items()}
        # Training: eager is what PyTorch has; NCHW (timed by the eager row when it runs in the
        # same repeat) or channels-last, whichever was faster.
        nchw = self.last_eager_train if self.last_eager_train else self.train_rate(torch.contiguous_format)
        self.last_eager_train = None
        train = {"eager, NCHW": nchw, "eager, channels-last": self.train_rate(torch.channels_last)}
        return {"train": best("train", train), "infer": best("infer", infer)}

    def describe(self):
        def fmt(kind):
            return "; ".join(f"{n} ({w}x)" for n, w in sorted(self.wins[kind].items(), key=lambda kv: -kv[1]))

        return f"inference {fmt('infer')}; training {fmt('train')} (fastest in how many repeats)"


class OrtPeer:
    """The network exported to ONNX once; each run is a fresh node process."""

    def __init__(self, args, reference_net):
        self.args = args
        self.available, self.why = False, ""
        self.script = os.path.join(HERE, "ort", "run_ort.mjs")
        self.node = shutil.which("node")
        if not self.node:
            self.why = "node is not installed"
            return
        if not os.path.isdir(os.path.join(HERE, "ort", "node_modules", "onnxruntime-node")):
            self.why = ("onnxruntime-node is not installed: run `npm install --ignore-scripts` in bench/ort "
                        "(if the npm registry refuses it, this row cannot run)")
            return
        self.tmp = tempfile.mkdtemp(prefix="tessera_ort_")
        self.model = os.path.join(self.tmp, "unet.onnx")
        x = torch.randn(args.batch, 1, args.size[0], args.size[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            last = None
            for opset in (17, 13):  # torch 1.13 exports up to opset 17
                try:
                    torch.onnx.export(reference_net, x, self.model, opset_version=opset, input_names=["image"],
                                      output_names=["probabilities"],
                                      dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}})
                    self.opset = opset
                    break
                except Exception as e:  # noqa: BLE001 -- try the older opset, then give up
                    last = e
            else:
                self.why = f"torch.onnx.export failed: {last}"
                return
        # Same network: ONNX Runtime's output for a given input must match PyTorch's.
        inp, outp = os.path.join(self.tmp, "input.f32"), os.path.join(self.tmp, "output.f32")
        x.numpy().astype("float32").tofile(inp)
        r = self._node(["--iters", "1", "--warmup", "0", "--input", inp, "--dump-output", outp])
        if "error" in r:
            self.why = r["error"]
            return
        with torch.inference_mode():
            ref = reference_net(x)
        got = torch.from_numpy(__import__("numpy").fromfile(outp, dtype="float32")).reshape(ref.shape)
        diff = (got - ref).abs().max().item()
        if diff > 1e-3:
            self.why = f"ONNX Runtime's output differs from PyTorch's by {diff}: not the same network"
            return
        self.version = r.get("onnxruntime_version", "?")
        self.providers = r.get("provider_node_events", {})
        self.available = True

    def _node(self, extra):
        a = self.args
        cmd = [self.node, self.script, self.model, "--threads", str(a.threads), "--batch", str(a.batch),
               "--size", str(a.size[0]), str(a.size[1])] + extra
        p = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if not lines:
            return {"error": f"run_ort.mjs exited {p.returncode}: {(p.stderr or p.stdout).strip()[-500:]}"}
        return json.loads(lines[-1])

    def run(self):
        r = self._node(["--iters", str(self.args.iters), "--warmup", str(self.args.warmup)])
        if "error" in r:
            raise RuntimeError(r["error"])
        return {"infer": r["infer_slices_per_s"]}

    def close(self):
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def tessera_run(args):
    a = args
    cmd = [a.binary, "--threads", str(a.threads), "--batch", str(a.batch), "--size", str(a.size[0]), str(a.size[1]),
           "--base", str(a.base), "--depth", str(a.depth), "--iters", str(a.iters), "--warmup", str(a.warmup)]
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {"train": r["train_slices_per_s"], "infer": r["infer_slices_per_s"]}


# ---------------------------------------------------------------------------------------------
# Other processes' CPU use during a measurement (a shared machine: builds, tests)


def busy_cpu_seconds():
    """CPU-seconds all processes have used so far (/proc/stat), or None where unreadable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(fn):
    """fn()'s result and the average number of CPUs other processes kept busy meanwhile."""
    b0, o0, t0 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    result = fn()
    b1, o1, t1 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    other = max(0.0, ((b1 - b0) - (o1 - o0)) / (t1 - t0)) if b0 is not None and b1 is not None else None
    return result, other


def wait_idle(limit_s, quiet_cpus=0.1, quiet_for_s=3):
    """Waits (up to limit_s) until other processes have used under quiet_cpus CPUs for
    quiet_for_s seconds in a row; returns whether they did."""
    deadline, quiet_since = time.monotonic() + limit_s, None
    while time.monotonic() < deadline:
        _, other = measure(lambda: time.sleep(1))
        if other is None:
            return False
        if other < quiet_cpus:
            quiet_since = quiet_since or time.monotonic() - 1
            if time.monotonic() - quiet_since >= quiet_for_s:
                return True
        else:
            quiet_since = None
    return False


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", nargs="?", default=os.path.join(REPO, "build", "bench", "tessera_bench_unet"),
                   help="Tessera's bench binary (default: build/bench/tessera_bench_unet)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, nargs=2, default=[128, 128])
    p.add_argument("--base", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of every row, interleaved; the median is reported (default 3)")
    p.add_argument("--rows", default="tessera,eager,best,ort", help="which rows to run (default: all)")
    p.add_argument("--max-other-cpus", type=float, default=0.2,
                   help="a run during which other processes kept more CPUs than this busy on average is "
                        "retaken after the machine is idle again (default 0.2)")
    p.add_argument("--retries", type=int, default=6, help="retakes of a disturbed run before it is kept (default 6)")
    p.add_argument("--idle-wait", type=float, default=600,
                   help="seconds to wait for an idle machine before each retake (default 600)")
    p.add_argument("--clock-ghz", type=float, help="use this clock for the peak (e.g. the all-core boost)")
    p.add_argument("--json", help="also write all numbers to this file")
    args = p.parse_args()
    load_start = os.getloadavg()[0]
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        p.error(f"unknown row(s) {unknown}; choose from {list(ROWS)}")

    skipped = {}
    if "tessera" in wanted and not os.access(args.binary, os.X_OK):
        skipped["tessera"] = f"{args.binary} does not exist (build the `tessera_bench_unet` target)"
    py = PythonPeers(args, "best" in wanted) if {"eager", "best"} & set(wanted) else None
    ort = None
    if "ort" in wanted:
        ort = OrtPeer(args, SoftmaxHead(make_net(args)).eval())
        if not ort.available:
            skipped["ort"] = ort.why
    runners = {"tessera": lambda: tessera_run(args), "eager": lambda: py.eager_run(),
               "best": lambda: py.best_run(), "ort": lambda: ort.run()}
    active = [r for r in wanted if r not in skipped]

    samples = {r: {"train": [], "infer": []} for r in active}
    others = {r: [] for r in active}  # other processes' busy CPUs during each kept run
    for _ in range(max(1, args.repeats)):
        for r in list(active):
            try:
                for attempt in range(args.retries + 1):
                    result, other = measure(runners[r])
                    if other is None or other <= args.max_other_cpus or attempt == args.retries:
                        break
                    print(f"{ROWS[r]}: other processes kept {other:.2f} CPUs busy; retaking when idle",
                          file=sys.stderr)
                    wait_idle(args.idle_wait)
                others[r].append(other)
            except (RuntimeError, OSError, subprocess.CalledProcessError, json.JSONDecodeError, KeyError) as e:
                detail = getattr(e, "stderr", None) or str(e)
                skipped[r] = f"failed: {str(detail).strip()[-300:]}"
                active.remove(r)
                del samples[r], others[r]
                continue
            for phase, v in result.items():
                samples[r][phase].append(v)
    if ort:
        ort.close()
    rates = {r: {ph: statistics.median(v) for ph, v in s.items() if v} for r, s in samples.items()}

    info = cpuinfo()
    per_cycle, isa_note = peak_flops_per_cycle(info)
    ghz, clock_note = clock_ghz(info, args.clock_ghz)
    peak = per_cycle * args.threads * ghz * 1e9 if per_cycle and ghz else None
    fwd = forward_flops(args.size[0], args.size[1], 1, 2, args.base, args.depth)
    flops = {"infer": fwd, "train": 3 * fwd}  # backward ~ 2x forward

    print(f"U-Net 2D base {args.base} depth {args.depth}, batch {args.batch} x {args.size[0]}x{args.size[1]}, "
          f"{args.threads} thread(s), median of {max(1, args.repeats)} run(s) of {args.iters} iterations; "
          f"torch {torch.__version__}" + (f", onnxruntime-node {ort.version} (opset {ort.opset}, providers "
                                          f"{', '.join(ort.providers)})" if ort and ort.available else ""))
    load_end = os.getloadavg()[0]
    worst = max((o for v in others.values() for o in v if o is not None), default=None)
    print(f"CPU: {info.get('model name', 'unknown')}, {os.cpu_count()} logical CPU(s); 1-minute load average "
          f"{load_start:.2f} at the start, {load_end:.2f} at the end (this run adds about {args.threads}); "
          + (f"other processes kept at most {worst:.2f} CPUs busy during a kept run" if worst is not None
             else "other processes' CPU use unknown"))
    print("clock: " + (f"{ghz:.2f} GHz from {clock_note}" if ghz else f"unknown ({clock_note})"))
    print("ISA: " + (f"{per_cycle} FP32 FLOP/cycle/core ({isa_note})" if per_cycle else f"unknown ({isa_note})"))
    print(f"peak: {peak / 1e9:.1f} GFLOP/s ({per_cycle} x {args.threads} thread(s) x {ghz:.2f} GHz)" if peak
          else "peak unknown")
    if py and py.want_best and "best" in rates:
        print(f"PyTorch best effort: {py.describe()}")

    tess = rates.get("tessera", {})
    header = (f"{'':<21}{'infer sl/s':>11}{'train sl/s':>11}{'Tessera/peer infer':>20}{'train':>7}"
              f"{'infer GF/s':>11}{'% peak':>8}{'train GF/s':>11}{'% peak':>8}")
    print(header)
    table = []
    for r in wanted:
        if r in skipped:
            print(f"{ROWS[r]:<21}skipped: {skipped[r]}")
            table.append({"row": r, "skipped": skipped[r]})
            continue
        row = {"row": r, "name": ROWS[r]}
        cells = []
        for ph in ("infer", "train"):
            v = rates[r].get(ph)
            row[f"{ph}_slices_per_s"] = v
            cells.append(f"{v:>11.1f}" if v else f"{'-':>11}")
        for ph in ("infer", "train"):
            v, t = rates[r].get(ph), tess.get(ph)
            ratio = t / v if v and t and r != "tessera" else None
            row[f"{ph}_ratio"] = ratio
            w = 20 if ph == "infer" else 7
            cells.append(f"{ratio:>{w - 1}.2f}x" if ratio else f"{'-':>{w}}")
        for ph in ("infer", "train"):
            v = rates[r].get(ph)
            gf = v * flops[ph] / 1e9 if v else None
            frac = gf * 1e9 / peak if gf and peak else None
            row[f"{ph}_gflops"], row[f"{ph}_peak_fraction"] = gf, frac
            cells.append(f"{gf:>11.1f}" if gf else f"{'-':>11}")
            cells.append(f"{100 * frac:>7.1f}%" if frac else f"{'-':>8}")
        kept = [o for o in others[r] if o is not None]
        row["other_cpus_max"] = max(kept) if kept else None
        disturbed = kept and max(kept) > args.max_other_cpus
        flag = f"  (other processes: up to {max(kept):.2f} CPUs busy)" if disturbed else ""
        print(f"{ROWS[r]:<21}" + "".join(cells) + flag)
        table.append(row)
    if peak and any((row.get("infer_peak_fraction") or 0) > 1 for row in table):
        print("note: above 100% of peak means the cores ran faster than the clock used; pass --clock-ghz "
              "with the all-core boost clock for a truer peak")
    goals = []
    if "ort" in rates and "infer" in tess:
        goals.append(f"inference >= 1.2x ONNX Runtime: {tess['infer'] / rates['ort']['infer']:.2f}x "
                     f"({'met' if tess['infer'] >= 1.2 * rates['ort']['infer'] else 'NOT met'})")
    for r in ("eager", "best"):
        if r in rates and "train" in tess:
            goals.append(f"training >= 2x {ROWS[r]}: {tess['train'] / rates[r]['train']:.2f}x "
                         f"({'met' if tess['train'] >= 2 * rates[r]['train'] else 'NOT met'})")
    for g in goals:
        print("goal: " + g)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "cpu": info.get("model name"), "load_average_start": load_start,
                       "load_average_end": load_end, "clock_ghz": ghz, "clock_source": clock_note,
                       "flop_per_cycle_per_core": per_cycle,
                       "isa_assumption": isa_note, "peak_gflops": peak / 1e9 if peak else None,
                       "best_effort_wins": py.wins if py and py.want_best else None,
                       "samples": samples, "other_cpus": others, "rows": table, "goals": goals}, f, indent=2)


if __name__ == "__main__":
    main()
