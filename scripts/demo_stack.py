"""The demo's moving parts on loopback: two upstreams, Envoy with the sluice filter (file ECDS), Prometheus
scraping Envoy, a webhook receiver that prints alerts, simulated users, and the `sluice` controller in local
mode. Every process it starts is killed by `Stack.stop()` (also on Ctrl-C)."""
import ctypes
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child: ask Linux to SIGTERM it when the demo dies, even by SIGKILL, so nothing is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_http(url, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"demo: {what} did not come up at {url}")


class Alerts(http.server.BaseHTTPRequestHandler):
    """Receives the controller's Slack-compatible webhooks and prints them."""

    received = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            alert = json.loads(body)
        except ValueError:
            alert = {"text": body.decode(errors="replace")}
        Alerts.received.append(alert)
        print(f"  ALERT [{alert.get('kind', '?')}] {alert.get('text', '')}", flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


# `make run`'s ports, the ones the README and the compose file name; `make demo` takes free ones.
FIXED_PORTS = {"listener": 10000, "admin": 9901, "stable": 10001, "canary": 10002, "prometheus": 9090,
               "webhook": 9095}


class Stack:
    def __init__(self, out_dir, sluice_config, fixed_ports=False):
        self.dir = os.path.abspath(out_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.sluice_config = sluice_config
        if fixed_ports:
            self.ports = dict(FIXED_PORTS)
            taken = [f"{name} :{port}" for name, port in self.ports.items() if not port_is_free(port)]
            if taken:
                raise SystemExit("demo: ports in use (another `make run`?): " + ", ".join(taken))
        else:
            self.ports = {}
            while len(set(self.ports.values())) < len(FIXED_PORTS):
                self.ports = {n: free_port() for n in FIXED_PORTS}
        self.token_file = None
        self.window = 20
        self.ecds = os.path.join(self.dir, "ecds", "sluice.json")
        self.processes = {}
        self.webhook = None

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}"

    def spawn(self, name, args, **kw):
        # Appended: act 2's processes keep act 1's logs.
        log = open(os.path.join(self.dir, f"{name}.log"), "a")
        self.processes[name] = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=die_with_parent, **kw
        )
        return self.processes[name]

    def write_config(self, config_json):
        """Writes the ECDS file; with a token file, testers get the override token it holds (printed)."""
        token = ["--override-token-file", self.token_file] if self.token_file else []
        out = subprocess.run(
            [sys.executable, "scripts/ecds.py", config_json, self.ecds, "dist/sluice_filter.wasm", *token],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        return out.strip()

    def upstreams(self, stable_name, canary_name):
        """(Re)starts the upstreams under these version names: what users and the timeline see."""
        for role, name in (("stable", stable_name), ("canary", canary_name)):
            old = self.processes.pop(role, None)
            if old:
                old.kill()
                old.wait()
            self.spawn(role, [sys.executable, "scripts/upstream.py", name, str(self.ports[role])])
        for role in ("stable", "canary"):
            # /__stats, not /: the upstream counts requests to / as users', and the mirror demo reports
            # that v3 answered none.
            wait_http(self.url(role) + "/__stats", f"the {role} upstream")
            # A little work per request, so that latency has something to show.
            body = json.dumps({"delay_ms": 12}).encode()
            req = urllib.request.Request(self.url(role) + "/__control", data=body, method="POST")
            urllib.request.urlopen(req, timeout=5).read()

    def start(self, stable_name, canary_name):
        self.upstreams(stable_name, canary_name)
        self.write_config(self.sluice_config)
        with open(os.path.join(ROOT, "envoy-configs/envoy.yaml")) as f:
            template = f.read()
        rendered = (
            template.replace("port_value: 9901", f"port_value: {self.ports['admin']}")
            .replace("port_value: 10000", f"port_value: {self.ports['listener']}")
            .replace("port_value: 10001", f"port_value: {self.ports['stable']}")
            .replace("port_value: 10002", f"port_value: {self.ports['canary']}")
            .replace(".run/ecds/sluice.json", self.ecds)
        )
        envoy_yaml = os.path.join(self.dir, "envoy.yaml")
        with open(envoy_yaml, "w") as f:
            f.write(rendered)
        self.spawn("envoy", [os.path.join(ROOT, ".venv/bin/envoy"), "-c", envoy_yaml,
                             "--concurrency", "2", "--use-dynamic-base-id", "-l", "info"])
        wait_http(self.url("admin") + "/ready", "Envoy")
        prom_dir = os.path.join(self.dir, "prometheus")
        os.makedirs(os.path.join(prom_dir, "data"), exist_ok=True)
        prom_yml = os.path.join(prom_dir, "prometheus.yml")
        with open(prom_yml, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"
                    "- job_name: envoy\n  metrics_path: /stats/prometheus\n"
                    f"  static_configs: [{{targets: ['127.0.0.1:{self.ports['admin']}']}}]\n")
        self.spawn("prometheus", ["prometheus", f"--config.file={prom_yml}",
                                  f"--storage.tsdb.path={prom_dir}/data",
                                  f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}"])
        wait_http(self.url("prometheus") + "/-/ready", "Prometheus")
        self.webhook = http.server.ThreadingHTTPServer(("127.0.0.1", self.ports["webhook"]), Alerts)
        threading.Thread(target=self.webhook.serve_forever, daemon=True).start()

    def users(self, args):
        self.spawn("users", [sys.executable, "scripts/demo-users.py", *args])

    def stop_controller(self):
        old = self.processes.pop("controller", None)
        if old:
            old.terminate()
            old.wait()

    def controller(self, rollout_yaml, state_file):
        self.stop_controller()
        sluice = os.path.join(ROOT, "target/debug/sluice")
        return self.spawn("controller", [sluice, "controller", "--local", rollout_yaml,
                                         "--prometheus", self.url("prometheus"),
                                         "--ecds-file", self.ecds, "--state-file", state_file],
                          env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"})

    def alive(self, name):
        p = self.processes.get(name)
        return p is not None and p.poll() is None

    def stop(self):
        # A second Ctrl-C or a SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, p in reversed(list(self.processes.items())):
            if p.poll() is None:
                p.terminate()
        for p in self.processes.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.webhook:
            self.webhook.shutdown()
