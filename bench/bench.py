#!/usr/bin/env python3
"""llm-proxy benchmark: every contender in front of the same mock upstream, under the same load.

Run through `bench/run` (which installs the tools first). Contenders: the mock directly
(baseline), nginx as a plain reverse proxy, llm-proxy, LiteLLM proxy and Portkey's gateway.
Load: `oha` closed-loop at fixed concurrency, and open-loop at a fixed rate with latency
correction (no coordinated omission). Streaming, memory and routing-scale runs use the
`bench_stream` example. Results: a dated Markdown file in bench/results/.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = '{"model":"bench","messages":[{"role":"user","content":"Hello, benchmark!"}]}'
ALL = ["direct", "nginx", "llm-proxy", "llm-proxy-keys", "litellm", "portkey"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*parts):
    print("[bench]", *parts, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# === process accounting ===

def tree(pid):
    """pid and all its descendants."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def memory_kb(pid, field):
    """Sum of a /proc status field (VmRSS now, VmHWM peak) over the process tree."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# === contenders ===

class Contender:
    def __init__(self, name, url, process, headers=(), model="bench"):
        self.name, self.url, self.process, self.headers, self.model = name, url, process, list(headers), model

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def spawn(cmd, logfile, env=None, cwd=None):
    return subprocess.Popen(
        cmd, stdout=open(logfile, "w"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        cwd=cwd, start_new_session=True,
    )


def wait_ready(contender, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if contender.process and contender.process.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {contender.process.returncode}")
        request = urllib.request.Request(
            contender.url, data=BODY.replace("bench", contender.model, 1).encode(), method="POST",
            headers={"content-type": "application/json", **dict(h.split(": ", 1) for h in contender.headers)},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{contender.name} never answered at {contender.url}")


def start_upstream(ctx, latency_ms=0, chunk_interval_ms=10, chunks=20):
    port = free_port()
    process = spawn(
        [ctx.upstream_bin, "--listen", f"127.0.0.1:{port}", "--latency-ms", str(latency_ms),
         "--chunks", str(chunks), "--chunk-interval-ms", str(chunk_interval_ms)],
        ctx.out / f"upstream-{port}.log",
    )
    contender = Contender("direct", f"http://127.0.0.1:{port}/v1/chat/completions", process)
    wait_ready(contender)
    return contender


def proxy_config(upstream_port, models=1, deployments=1):
    lines = ["providers:"]
    for d in range(deployments):
        lines.append(f"  up{d}: {{type: openai, api_key: sk-bench, base_url: \"http://127.0.0.1:{upstream_port}/v1\"}}")
    lines.append("models:")
    for m in range(models):
        name = "bench" if models == 1 else f"model-{m}"
        providers = ", ".join(f"up{d}: {{priority: {d}, model_id: bench-model}}" for d in range(deployments))
        lines.append(f"  {name}: {{providers: {{{providers}}}}}")
    return "\n".join(lines) + "\n"


def start_llm_proxy(ctx, upstream, models=1, deployments=1, model="bench"):
    port, up_port = free_port(), upstream.url.split(":")[2].split("/")[0]
    config = ctx.out / f"llm-proxy-{models}x{deployments}.yaml"
    config.write_text(proxy_config(up_port, models, deployments))
    process = spawn([ctx.proxy_bin, "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                    ctx.out / f"llm-proxy-{port}.log")
    contender = Contender("llm-proxy", f"http://127.0.0.1:{port}/v1/chat/completions", process, model=model)
    wait_ready(contender)
    return contender


BENCH_KEY = "sk-lp-benchkey_0123456789abcdefghijklmnopqrstuv"


def start_llm_proxy_keys(ctx, upstream):
    """llm-proxy with governance on: a virtual key with rpm, tpm and a budget (never reached),
    every request priced and written to the ledger in an embedded SQLite file."""
    import hashlib
    port, up_port = free_port(), upstream.url.split(":")[2].split("/")[0]
    config = ctx.out / "llm-proxy-keys.yaml"
    db = ctx.out / f"llm-proxy-keys-{port}.db"
    digest = hashlib.sha256(BENCH_KEY.encode()).hexdigest()
    priced = proxy_config(up_port).replace("model_id: bench-model}", "model_id: bench-model, price: {input: 2.5, output: 10}}")
    config.write_text(priced + f"""server: {{master_key: sk-bench-master}}
store: {{url: "sqlite://{db}"}}
teams: [{{id: bench-team, rpm: 100000000, tpm: 1000000000000}}]
keys:
  - {{id: benchkey, hash: "{digest}", team: bench-team, rpm: 100000000, tpm: 1000000000000,
     max_parallel: 100000, budget: {{hard_usd: 1000000, period: monthly}}}}
""")
    process = spawn([ctx.proxy_bin, "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                    ctx.out / f"llm-proxy-keys-{port}.log")
    contender = Contender("llm-proxy-keys", f"http://127.0.0.1:{port}/v1/chat/completions", process,
                          headers=[f"authorization: Bearer {BENCH_KEY}"])
    wait_ready(contender)
    return contender


def start_nginx(ctx, upstream):
    port, up_port = free_port(), upstream.url.split(":")[2].split("/")[0]
    prefix = Path(tempfile.mkdtemp(prefix="nginx-", dir=ctx.out))
    (prefix / "logs").mkdir()
    (prefix / "nginx.conf").write_text(f"""
worker_processes 2;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  upstream mock {{ server 127.0.0.1:{up_port}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      client_body_buffer_size 1m;
    }}
  }}
}}
""")
    process = spawn(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], prefix / "logs/stdout.log")
    contender = Contender("nginx", f"http://127.0.0.1:{port}/v1/chat/completions", process)
    wait_ready(contender)
    return contender


def start_litellm(ctx, upstream):
    port = free_port()
    config = ctx.out / "litellm.yaml"
    config.write_text(f"""
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench-model
      api_base: {upstream.url.rsplit('/chat/completions', 1)[0]}
      api_key: sk-bench
general_settings:
  master_key: sk-litellm-bench
""")
    process = spawn(
        [str(ctx.cache / "litellm-venv/bin/litellm"), "--config", str(config), "--port", str(port),
         "--host", "127.0.0.1", "--num_workers", "1"],
        ctx.out / "litellm.log", env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
    )
    contender = Contender("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", process,
                          headers=["authorization: Bearer sk-litellm-bench"])
    wait_ready(contender, timeout=180)
    return contender


def start_portkey(ctx, upstream):
    port = free_port()
    base = upstream.url.rsplit("/chat/completions", 1)[0]
    process = spawn(
        ["node", "node_modules/@portkey-ai/gateway/build/start-server.js", "--headless", f"--port={port}"],
        ctx.out / "portkey.log", cwd=ctx.cache / "portkey",
    )
    contender = Contender("portkey", f"http://127.0.0.1:{port}/v1/chat/completions", process,
                          headers=["x-portkey-provider: openai", f"x-portkey-custom-host: {base}",
                                   "authorization: Bearer sk-bench"])
    wait_ready(contender, timeout=90)
    return contender


# === load ===

def oha(ctx, contender, concurrency, seconds, rate=None, body=BODY):
    cmd = [ctx.oha_bin, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(concurrency),
           "-m", "POST", "-T", "application/json", "-d", body.replace('"bench"', f'"{contender.model}"', 1)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    for header in contender.headers:
        cmd += ["-H", header]
    cmd.append(contender.url)
    cpu_before = cpu_seconds(contender.process.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(contender.process.pid) - cpu_before
    report = json.loads(out)
    summary, pct = report["summary"], report["latencyPercentiles"]
    ok = report.get("statusCodeDistribution", {}).get("200", 0)
    total = sum(report.get("statusCodeDistribution", {}).values()) + sum(report.get("errorDistribution", {}).values())
    return {
        "rps": ok / seconds,
        "ok": ok, "total": total,
        "p50": pct["p50"] * 1e6, "p90": pct["p90"] * 1e6, "p99": pct["p99"] * 1e6, "p999": pct["p99.9"] * 1e6,
        "cpu_s_per_1k": cpu / ok * 1000 if ok else None,
    }


def stream_load(ctx, contender, concurrency, seconds):
    cmd = [ctx.stream_bin, "--url", contender.url, "--model", contender.model, "--concurrency", str(concurrency),
           "--duration-s", str(seconds)]
    for header in contender.headers:
        cmd += ["--header", header]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


# === runs ===

def run_contender(ctx, name, upstream):
    start = {"direct": lambda: upstream, "nginx": start_nginx, "llm-proxy": start_llm_proxy,
             "llm-proxy-keys": start_llm_proxy_keys, "litellm": start_litellm, "portkey": start_portkey}[name]
    contender = start() if name == "direct" else start(ctx, upstream)
    pid = contender.process.pid
    result = {"idle_rss_kb": memory_kb(pid, "VmRSS")}
    try:
        oha(ctx, contender, 16, 1)  # warm-up: connections, JIT, caches
        slow = name in ("litellm", "portkey")
        secs = ctx.seconds / (2 if slow else 1)
        result["closed"] = {c: oha(ctx, contender, c, secs) for c in ctx.concurrency}
        result["open"] = {r: oha(ctx, contender, max(64, r // 20), secs * 2, rate=r) for r in ctx.rates}
        result["stream"] = stream_load(ctx, contender, 16, secs)
        result["peak_rss_kb"] = memory_kb(pid, "VmHWM")
        result["rss_after_kb"] = memory_kb(pid, "VmRSS")
    finally:
        if name != "direct":
            contender.stop()
    return result


def slow_upstream_run(ctx, names):
    """A 60 ms upstream at 256 connections: concurrency, not CPU, is what is measured."""
    upstream = start_upstream(ctx, latency_ms=60)
    out = {}
    try:
        for name in names:
            starter = {"direct": None, "nginx": start_nginx, "llm-proxy": start_llm_proxy,
                       "llm-proxy-keys": start_llm_proxy_keys, "litellm": start_litellm, "portkey": start_portkey}[name]
            contender = upstream if starter is None else starter(ctx, upstream)
            try:
                out[name] = oha(ctx, contender, 256, ctx.seconds)
            finally:
                if starter:
                    contender.stop()
    finally:
        upstream.stop()
    return out


def idle_streams(ctx, upstream_streams=10_000):
    """Proxy memory with many open, idle streams: bytes per stream."""
    upstream = start_upstream(ctx, chunks=3, chunk_interval_ms=120_000)
    proxy = start_llm_proxy(ctx, upstream)
    try:
        oha(ctx, proxy, 16, 1)
        before = memory_kb(proxy.process.pid, "VmRSS")
        holder = subprocess.Popen(
            [ctx.stream_bin, "--url", proxy.url, "--hold", str(upstream_streams), "--duration-s", "3"],
            stdout=subprocess.PIPE, text=True,
        )
        line = holder.stdout.readline().strip()
        held = int(line.split()[1]) if line.startswith("holding") else 0
        time.sleep(1)
        during = memory_kb(proxy.process.pid, "VmRSS")
        holder.wait()
        return {"streams": held, "rss_before_kb": before, "rss_during_kb": during,
                "bytes_per_stream": (during - before) * 1024 / held if held else None}
    finally:
        proxy.stop()
        upstream.stop()


def config_scale(ctx):
    """Latency with 1 model × 1 deployment vs 1,000 models × 5 deployments."""
    upstream = start_upstream(ctx)
    out = {}
    try:
        for models, deployments, model in [(1, 1, "bench"), (1000, 5, "model-999")]:
            proxy = start_llm_proxy(ctx, upstream, models, deployments, model=model)
            try:
                oha(ctx, proxy, 4, 1)
                out[f"{models}x{deployments}"] = {
                    "c1": oha(ctx, proxy, 1, ctx.seconds), "c64": oha(ctx, proxy, 64, ctx.seconds),
                    "idle_rss_kb": memory_kb(proxy.process.pid, "VmRSS"),
                }
            finally:
                proxy.stop()
    finally:
        upstream.stop()
    return out


def startup(ctx, runs=10):
    """Milliseconds from exec to the first served chat completion."""
    upstream = start_upstream(ctx)
    times = []
    try:
        for _ in range(runs):
            port = free_port()
            config = ctx.out / "startup.yaml"
            config.write_text(proxy_config(upstream.url.split(":")[2].split("/")[0]))
            began = time.monotonic()
            process = spawn([ctx.proxy_bin, "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                            ctx.out / "startup.log")
            contender = Contender("llm-proxy", f"http://127.0.0.1:{port}/v1/chat/completions", process)
            request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n{BODY}").encode()
            while True:  # poll every 0.2 ms: the number measured is the proxy's, not the poll's
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(request)
                        if s.recv(64).startswith(b"HTTP/1.1 200"):
                            break
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError("llm-proxy exited during startup")
                    time.sleep(0.0002)
            times.append((time.monotonic() - began) * 1000)
            contender.stop()
    finally:
        upstream.stop()
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def smoke(ctx):
    """Seconds-long check (CI) that the bench's parts build, start and agree: no oha needed."""
    upstream = start_upstream(ctx, chunks=3, chunk_interval_ms=1)
    proxy = start_llm_proxy(ctx, upstream)
    passed = failed = 0
    try:
        for plain in (True, False):
            cmd = [ctx.stream_bin, "--url", proxy.url, "--concurrency", "4", "--duration-s", "1"]
            result = json.loads(subprocess.run(cmd + (["--plain"] if plain else []), capture_output=True,
                                               text=True, check=True).stdout)
            ok = result["requests"] > 0 and result["errors"] == 0
            log("smoke", "plain" if plain else "stream", result["requests"], "requests,", result["errors"], "errors")
            passed, failed = passed + ok, failed + (not ok)
    finally:
        proxy.stop()
        upstream.stop()
    print(f"bench smoke: {passed} passed, {failed} failed")
    return failed == 0


def soak(ctx, minutes, rate=1000):
    upstream = start_upstream(ctx)
    proxy = start_llm_proxy(ctx, upstream)
    curve = []
    try:
        load = subprocess.Popen(
            [ctx.oha_bin, "--no-tui", "--output-format", "json", "-z", f"{int(minutes * 60)}s", "-c", "64",
             "-q", str(rate), "--latency-correction", "-m", "POST", "-T", "application/json", "-d", BODY, proxy.url],
            stdout=subprocess.PIPE, text=True,
        )
        began = time.monotonic()
        while load.poll() is None:
            curve.append((round(time.monotonic() - began), memory_kb(proxy.process.pid, "VmRSS")))
            time.sleep(10)
        report = json.loads(load.stdout.read())
        curve.append((round(time.monotonic() - began), memory_kb(proxy.process.pid, "VmRSS")))
        return {"curve": curve, "ok": report.get("statusCodeDistribution", {}).get("200", 0),
                "p99_us": report["latencyPercentiles"]["p99"] * 1e6}
    finally:
        proxy.stop()
        upstream.stop()


# === report ===

def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} vCPU ({cpu}), {mem} GiB RAM, Linux {platform.release()}; shared and noisy"


def versions(ctx):
    def cmd(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    return {
        "oha": cmd(ctx.oha_bin, "--version"), "nginx": cmd("sh", "-c", "nginx -v 2>&1"),
        "llm-proxy": cmd(ctx.proxy_bin, "--version"),
    }


def report(ctx, results):
    lines = [f"# Benchmark results, {ctx.date}", "", f"Machine: {machine()}.", ""]
    lines.append("Tools: " + ", ".join(f"{k} `{v}`" for k, v in versions(ctx).items()) +
                 "; LiteLLM `litellm[proxy]==1.108.7` (1 worker); Portkey `@portkey-ai/gateway@1.15.2` (node "
                 + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() + ").")
    lines += ["", f"Every run: `bench/run{' --quick' if ctx.quick else ''}{' --soak' if 'soak' in results else ''}`; {ctx.seconds:g} s per closed-loop point. "
              "Upstream: `examples/bench_upstream.rs`, 0 ms latency unless noted. Everything (load generator, "
              "contender, upstream) shares the same cores over loopback, so absolute numbers are lower than on "
              "separate machines; ratios measured in one run are the point.", ""]
    base = results.get("direct")
    names = [n for n in ALL if n in results]

    if names:
        lines += ["## Throughput, closed loop (requests/s, non-streaming)", "",
                  "| contender | " + " | ".join(f"c={c}" for c in ctx.concurrency) + " | CPU s / 1k req (c=64) | vs nginx (c=64) |",
                  "|---" * (len(ctx.concurrency) + 3) + "|"]
        nginx64 = results.get("nginx", {}).get("closed", {}).get(64, {}).get("rps")
        for n in names:
            closed = results[n]["closed"]
            c64 = closed.get(64, {})
            ratio = f"{c64['rps'] / nginx64:.2f}×" if nginx64 and c64 else "–"
            lines.append(f"| {n} | " + " | ".join(fmt(closed[c]["rps"]) for c in ctx.concurrency) +
                         f" | {fmt(c64.get('cpu_s_per_1k'), 3)} | {ratio} |")

        def latency_table(title, key_fn):
            lines.extend(["", f"## {title}", "",
                          "| contender | p50 | p90 | p99 | p99.9 | added p50 | added p99 | added p99.9 |",
                          "|---|---|---|---|---|---|---|---|"])
            for n in names:
                r = key_fn(results[n])
                b = key_fn(base) if base else None
                add = lambda k: fmt(r[k] - b[k]) if b else "–"
                lines.append(f"| {n} | {fmt(r['p50'])} | {fmt(r['p90'])} | {fmt(r['p99'])} | {fmt(r['p999'])} | "
                             f"{add('p50')} | {add('p99')} | {add('p999')} |")

        latency_table("Latency, 1 connection (µs; added = contender − direct)", lambda r: r["closed"][1])
        latency_table("Latency, 64 connections (µs)", lambda r: r["closed"][64])
        for rate in ctx.rates:
            latency_table(f"Latency, open loop at {rate:,} req/s with latency correction (µs)",
                          lambda r, rate=rate: r["open"][rate])
            lines.append("")
            lines.append("Achieved: " + ", ".join(f"{n} {fmt(results[n]['open'][rate]['rps'])} req/s" for n in names))

        lines += ["", "## Streaming (16 concurrent streams of 20 chunks, 10 ms apart; µs)", "",
                  "| contender | streams/s | TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 | gap p50 | gap p99 | added gap p99 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for n in names:
            s, b = results[n]["stream"], base["stream"] if base else None
            lines.append(
                f"| {n} | {fmt(s['rps'], 1)} | {fmt(s['ttfb_us']['p50'])} | {fmt(s['ttfb_us']['p99'])} | "
                f"{fmt(s['ttfb_us']['p50'] - b['ttfb_us']['p50']) if b else '–'} | "
                f"{fmt(s['ttfb_us']['p99'] - b['ttfb_us']['p99']) if b else '–'} | "
                f"{fmt(s['gap_us']['p50'])} | {fmt(s['gap_us']['p99'])} | "
                f"{fmt(s['gap_us']['p99'] - b['gap_us']['p99']) if b else '–'} |")

        lines += ["", "## Memory", "", "| contender | idle RSS (MB) | peak RSS (MB) | RSS after load (MB) |", "|---|---|---|---|"]
        for n in names:
            r = results[n]
            lines.append(f"| {n} | {fmt(r['idle_rss_kb'] / 1024, 1)} | {fmt(r['peak_rss_kb'] / 1024, 1)} | "
                         f"{fmt(r['rss_after_kb'] / 1024, 1)} |")
        lines.append("")
        lines.append("Multi-process contenders (nginx workers, LiteLLM, node) are summed over their process tree.")

    if "slow" in results:
        lines += ["", "## 60 ms upstream, 256 connections", "", "| contender | req/s | p50 (ms) | p99 (ms) |", "|---|---|---|---|"]
        for n, r in results["slow"].items():
            lines.append(f"| {n} | {fmt(r['rps'])} | {fmt(r['p50'] / 1000, 1)} | {fmt(r['p99'] / 1000, 1)} |")
    if "idle_streams" in results:
        s = results["idle_streams"]
        lines += ["", "## Idle open streams (llm-proxy)", "",
                  f"{s['streams']:,} streams held open: RSS {fmt(s['rss_before_kb'] / 1024, 1)} MB → "
                  f"{fmt(s['rss_during_kb'] / 1024, 1)} MB, **{fmt(s['bytes_per_stream'])} bytes per stream**."]
    if "config_scale" in results:
        lines += ["", "## Routing cost vs config size (llm-proxy)", "",
                  "| config | c=1 p50 (µs) | c=1 p99 (µs) | c=64 req/s | idle RSS (MB) |", "|---|---|---|---|---|"]
        for k, r in results["config_scale"].items():
            lines.append(f"| {k.replace('x', ' model(s) × ')} deployment(s) | {fmt(r['c1']['p50'])} | {fmt(r['c1']['p99'])} | "
                         f"{fmt(r['c64']['rps'])} | {fmt(r['idle_rss_kb'] / 1024, 1)} |")
    if "startup" in results:
        s = results["startup"]
        lines += ["", f"## Startup", "", f"Exec to first served chat completion: median {fmt(s['median_ms'], 1)} ms, "
                  f"max {fmt(s['max_ms'], 1)} ms (10 runs)."]
    if "soak" in results:
        s = results["soak"]
        lines += ["", "## Soak at 1,000 req/s (llm-proxy RSS over time)", "", "| seconds | RSS (MB) |", "|---|---|"]
        lines += [f"| {t} | {fmt(kb / 1024, 2)} |" for t, kb in s["curve"]]
        lines.append(f"\n{s['ok']:,} requests served, p99 {fmt(s['p99_us'])} µs.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contenders", default=",".join(ALL))
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute in all)")
    parser.add_argument("--soak", type=float, default=0, metavar="MINUTES", help="only the soak, this long")
    parser.add_argument("--no-scale", action="store_true", help="skip idle-stream, config-size and startup runs")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check that the bench runs (CI)")
    parser.add_argument("--cache", default=os.environ.get("BENCH_CACHE", str(Path.home() / ".cache/llm-proxy/bench")))
    parser.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    args = parser.parse_args()

    ctx = argparse.Namespace()
    ctx.cache = Path(args.cache)
    ctx.quick = args.quick
    ctx.date = datetime.date.today().isoformat()
    release = Path(args.target) / "release"
    ctx.proxy_bin, ctx.upstream_bin = str(release / "llm-proxy"), str(release / "examples/bench_upstream")
    ctx.stream_bin = str(release / "examples/bench_stream")
    ctx.oha_bin = str(ctx.cache / "tools/bin/oha") if (ctx.cache / "tools/bin/oha").exists() else shutil.which("oha")
    ctx.seconds = 2 if args.quick else 5
    ctx.concurrency = [1, 16, 64, 256]
    ctx.rates = [1000, 5000]
    ctx.out = Path(tempfile.mkdtemp(prefix="llm-proxy-bench-"))
    log("logs in", ctx.out)

    if args.smoke:
        sys.exit(0 if smoke(ctx) else 1)
    results = {}
    if args.soak:
        results["soak"] = soak(ctx, args.soak)
    else:
        names = [n for n in ALL if n in args.contenders.split(",")]
        upstream = start_upstream(ctx)
        try:
            for name in names:
                log("contender", name)
                results[name] = run_contender(ctx, name, upstream)
        finally:
            upstream.stop()
        log("60 ms upstream")
        results["slow"] = slow_upstream_run(ctx, names)
        if not args.no_scale:
            log("idle streams")
            results["idle_streams"] = idle_streams(ctx, 2_000 if args.quick else 10_000)
            log("config scale")
            results["config_scale"] = config_scale(ctx)
            log("startup")
            results["startup"] = startup(ctx)

    text = report(ctx, results)
    out_dir = ROOT / "bench/results"
    out_dir.mkdir(parents=True, exist_ok=True)
    subset = [n for n in ALL if n in args.contenders.split(",")]
    suffix = "-soak" if args.soak else ("-quick" if args.quick else "")
    if not args.soak and subset != ALL:
        suffix += "-" + "-".join(subset)
    path = out_dir / f"{ctx.date}{suffix}.md"
    path.write_text(text)
    (ctx.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(text)
    log("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
