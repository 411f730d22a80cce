"""A Ray head of our own on this machine, for the Ray tests and the batch benchmark.

One helper process runs `ray.init` (2 CPUs, loopback, a token of its own) and holds it until
its stdin closes; leaving the `with` shuts down that cluster and only that one.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager

# Ray takes 127.0.0.1 as "this machine, no cluster" only in its single-machine mode (what it uses
# on macOS and Windows); elsewhere it would bind the machine's network address. The token is the
# cluster's own (nothing kept in ~/.ray); a driver needs the same variables.
HEAD = """
import sys, ray
ctx = ray.init(num_cpus=int(sys.argv[2]), include_dashboard=False, _node_ip_address="127.0.0.1",
               object_store_memory=80 * 1024 * 1024, _temp_dir=sys.argv[1], configure_logging=False)
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until our owner closes it
ray.shutdown()
"""


@contextmanager
def local_ray_head(cpus: int = 2):
    """Yields (address, head pid, env for a driver)."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = tempfile.mkdtemp(prefix="fgray", dir="/tmp")  # short: Ray's socket paths have a length limit
    head = subprocess.Popen([sys.executable, "-c", HEAD, temp, str(cpus)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        address = head.stdout.readline().strip()
        if not address.startswith("127.0.0.1:"):
            raise RuntimeError(f"the Ray head did not start on 127.0.0.1 ({address!r})")
        yield address, head.pid, env
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # whatever of its cluster is left: ours alone
        except ProcessLookupError:
            pass
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
