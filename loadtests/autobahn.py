"""WebSocket conformance: Autobahn|Testsuite against covetd's echo endpoint (``make autobahn``).

Starts covetd on a free port with the echo endpoint of ``examples/chat.py`` and
``websocket.max_message_size`` raised to 64 MiB (section 9 sends 16 MiB messages),
runs ``../shared/tools/autobahn/run-autobahn`` on cases 1-10, then on the
permessage-deflate cases 12-13 (``--quick``), and stops covetd by its PID. Exit status
0 only when both runs report 0 failed.

    python loadtests/autobahn.py              # both runs
    python loadtests/autobahn.py --cases "5.*,6.*"
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOOL = REPO.parent / "shared" / "tools" / "autobahn" / "run-autobahn"
TOOL = Path(os.environ.get("COVETD_AUTOBAHN", DEFAULT_TOOL))
CONFIG = """\
app: examples.chat:app
app_dir: {repo}
server: {{bind: ["127.0.0.1:{port}"], workers: 1}}
websocket: {{max_message_size: 64MiB, compression: true}}
metrics: {{enabled: false}}
logging: {{level: warning, access_log: false}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"covetd exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("covetd did not start listening within 15 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="only these Autobahn case patterns (one run)")
    args = parser.parse_args()
    if not TOOL.exists():
        print(f"run-autobahn not found at {TOOL} (set COVETD_AUTOBAHN)", file=sys.stderr)
        return 2
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="covetd-autobahn-") as scratch:
        config = Path(scratch) / "covetd.yaml"
        config.write_text(CONFIG.format(repo=REPO, port=port))
        covetd = Path(sys.executable).with_name("covetd")
        process = subprocess.Popen([str(covetd), "-c", str(config)])
        try:
            wait_listening(port, process, time.monotonic() + 15)
            url = f"ws://127.0.0.1:{port}/echo"
            runs = [[url, args.cases]] if args.cases else [[url], ["--quick", url, "12.*,13.*"]]
            status = 0
            for run in runs:
                print("+ run-autobahn", " ".join(run), file=sys.stderr, flush=True)
                status |= subprocess.call([str(TOOL), *run])
            return status
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
