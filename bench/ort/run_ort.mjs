// The ONNX Runtime peer of bench/compare_unet.py: runs an exported U-Net on ONNX Runtime's CPU
// execution provider (npm onnxruntime-node) and prints one JSON line with slices/s.
//
// usage: node bench/ort/run_ort.mjs MODEL.onnx --threads N --batch B --size H W
//        [--iters N] [--warmup N] [--in-channels C] [--input IN.f32] [--dump-output OUT.f32]
//
// Inputs are random normal values of shape [B, C, H, W] (the network's time does not depend
// on them), or raw little-endian float32 from --input; --dump-output writes the last output the
// same way (compare_unet.py checks with them that ONNX Runtime computes what PyTorch does).
// Before timing, one run with ONNX Runtime's profiler on checks which execution provider ran
// every node: the script fails if any node ran on a provider other than the CPU one.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

let ort;
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  console.log(JSON.stringify({ error: `onnxruntime-node is not installed (${e.message.split("\n")[0]}); ` +
    "run `npm install --ignore-scripts` in bench/ort" }));
  process.exit(3);
}

const args = process.argv.slice(2);
const opts = { threads: 1, batch: 16, h: 128, w: 128, iters: 10, warmup: 2, inChannels: 1 };
let model = null, inputFile = null, dumpFile = null;
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  const num = () => Number.parseInt(args[++i], 10);
  if (a === "--threads") opts.threads = num();
  else if (a === "--batch") opts.batch = num();
  else if (a === "--size") { opts.h = num(); opts.w = num(); }
  else if (a === "--iters") opts.iters = num();
  else if (a === "--warmup") opts.warmup = num();
  else if (a === "--in-channels") opts.inChannels = num();
  else if (a === "--input") inputFile = args[++i];
  else if (a === "--dump-output") dumpFile = args[++i];
  else if (!a.startsWith("--") && model === null) model = a;
  else {
    console.error(`run_ort.mjs: unknown argument ${a}`);
    process.exit(2);
  }
}
if (model === null) {
  console.error("usage: run_ort.mjs MODEL.onnx --threads N --batch B --size H W [--iters N] [--warmup N]");
  process.exit(2);
}

function sessionOptions(extra = {}) {
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: opts.threads,
    graphOptimizationLevel: "all",
    ...extra,
  };
}

// Box-Muller normal values: the input only has to be dense, finite and not all equal.
const n = opts.batch * opts.inChannels * opts.h * opts.w;
let data = new Float32Array(n);
if (inputFile) {
  const buf = readFileSync(inputFile);
  if (buf.length !== 4 * n) {
    console.log(JSON.stringify({ error: `${inputFile} has ${buf.length} bytes, expected ${4 * n}` }));
    process.exit(2);
  }
  data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
} else for (let i = 0; i < n; i += 2) {
  const u = 1 - Math.random(), v = Math.random();
  const r = Math.sqrt(-2 * Math.log(u));
  data[i] = r * Math.cos(2 * Math.PI * v);
  if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * v);
}

// Provider check: one profiled run; every node event names the provider it ran on.
const prefix = join(tmpdir(), `tessera_ort_profile_${process.pid}`);
const check = await ort.InferenceSession.create(model, sessionOptions({ enableProfiling: true, profileFilePrefix: prefix }));
const inputName = check.inputNames[0];
const feeds = { [inputName]: new ort.Tensor("float32", data, [opts.batch, opts.inChannels, opts.h, opts.w]) };
await check.run(feeds);
check.endProfiling();
await check.release();
const providers = {};
let profileFile = null;
for (const f of readdirSync(tmpdir())) {
  if (f.startsWith(`tessera_ort_profile_${process.pid}`)) profileFile = join(tmpdir(), f);
}
if (profileFile && existsSync(profileFile)) {
  for (const ev of JSON.parse(readFileSync(profileFile, "utf8"))) {
    const p = ev.args && ev.args.provider;
    if (ev.cat === "Node" && p) providers[p] = (providers[p] || 0) + 1;
  }
  rmSync(profileFile, { force: true });
}
const providerNames = Object.keys(providers);
if (providerNames.length === 0) {
  console.log(JSON.stringify({ error: "ONNX Runtime's profile named no execution provider; cannot check the CPU one ran" }));
  process.exit(4);
}
if (providerNames.some((p) => p !== "CPUExecutionProvider")) {
  console.log(JSON.stringify({ error: `nodes ran on ${providerNames.join(", ")}, not only CPUExecutionProvider` }));
  process.exit(4);
}

const session = await ort.InferenceSession.create(model, sessionOptions());
for (let i = 0; i < opts.warmup; ++i) await session.run(feeds);
const t0 = performance.now();
let out;
for (let i = 0; i < opts.iters; ++i) out = await session.run(feeds);
const seconds = (performance.now() - t0) / 1000;
const outTensor = out ? out[session.outputNames[0]] : (await session.run(feeds))[session.outputNames[0]];
if (dumpFile) writeFileSync(dumpFile, Buffer.from(outTensor.data.buffer, outTensor.data.byteOffset, outTensor.data.byteLength));
console.log(JSON.stringify({
  infer_slices_per_s: opts.iters > 0 ? (opts.batch * opts.iters) / seconds : null,
  seconds,
  iters: opts.iters,
  batch: opts.batch,
  threads: opts.threads,
  output_dims: outTensor.dims,
  provider_node_events: providers,
  onnxruntime_version: ort.env.versions ? ort.env.versions.node : "unknown",
}));
