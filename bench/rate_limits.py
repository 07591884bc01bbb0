"""Rate limits are not outages: three OpenAI-compatible upstreams answering 429 (Retry-After: 1)
on 4%, 4% and 2% of requests, two in one tier and one behind them; prints how many client
requests got which status through the given proxy binary.

    python3 bench/rate_limits.py target/release/llm-proxy 3000 32   # binary, requests, connections

Everything runs on 127.0.0.1; nothing is timed but the whole run. See BENCHMARKS.md.
"""
import collections, http.client, json, os, random, re, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def upstream(rate):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if random.random() < rate:
                body = b'{"error":{"message":"rate limited","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
                self.send_response(429); self.send_header("Retry-After", "1")
            else:
                body = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    s = ThreadingHTTPServer(("127.0.0.1", 0), H); threading.Thread(target=s.serve_forever, daemon=True).start()
    return s.server_port

binary, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ports = [upstream(0.04), upstream(0.04), upstream(0.02)]
cfg = f"""providers:
  a: {{type: openai, base_url: "http://127.0.0.1:{ports[0]}/v1"}}
  b: {{type: openai, base_url: "http://127.0.0.1:{ports[1]}/v1"}}
  c: {{type: openai, base_url: "http://127.0.0.1:{ports[2]}/v1"}}
models:
  m: {{providers: {{a: {{priority: 0}}, b: {{priority: 0}}, c: {{priority: 1}}}}}}
"""
config = os.path.join(tempfile.mkdtemp(prefix="llm-proxy-rate-limits-"), "config.yaml")
open(config, "w").write(cfg)
proc = subprocess.Popen([binary, "--config", config, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"NO_COLOR": "1"})
addr = None
while addr is None:
    line = proc.stdout.readline()
    m = re.search(r"listening addr=(\S+)", line)
    if m: addr = m.group(1)
threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
host, port = addr.rsplit(":", 1)
counts = collections.Counter(); lock = threading.Lock()
body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
def worker(k):
    c = http.client.HTTPConnection(host, int(port))
    for _ in range(k):
        c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        with lock: counts[r.status] += 1
threads = [threading.Thread(target=worker, args=(n // conc,)) for _ in range(conc)]
t0 = time.time(); [t.start() for t in threads]; [t.join() for t in threads]
total = sum(counts.values())
print(binary.split("/")[-1], {k: f"{v} ({100*v/total:.1f}%)" for k, v in sorted(counts.items())}, f"{time.time()-t0:.1f}s")
proc.terminate(); proc.wait()
