"""The real settings, with a throwaway SECRET_KEY when the environment gives none."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)
# Health archive keys for tests only (fixed, public, worthless): one KEK "t1" and the blind-index key.
os.environ.setdefault("HEALTH_KEYS", "t1:33YaDSQXIMeZKWjnEQEcK4bW2+CtliKaz5hx0v0afMM=")
os.environ.setdefault("HEALTH_BLIND_INDEX_KEY", "SA2n6K2CnyJcpeNQb6wuIMRMictUKtt6nyf2iLT1a0s=")
# Access log keys for tests only: the chain's HMAC key and the Ed25519 checkpoint signing key. Checkpoints
# go to a directory of this test run (tests that verify use their own, see test_access_log_tamper.py).
os.environ.setdefault("ACCESS_LOG_HMAC_KEY", "WhRPjtN+KM6MkGNKJSgdQfDdtMbhOwuhuPvjHTf8HoU=")
os.environ.setdefault("ACCESS_LOG_SIGNING_KEY", "srcGkDVHnH4JxQ43rC+UpM7oWgF/1M54IEIq9e3ZFIU=")
if "ACCESS_LOG_CHECKPOINT_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["ACCESS_LOG_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="onekey120-test-checkpoints-")
    atexit.register(shutil.rmtree, os.environ["ACCESS_LOG_CHECKPOINT_DIR"], True)

# The test client speaks plain HTTP: opt out of the production HTTPS defaults (redirect, secure cookies, HSTS).
os.environ.setdefault("HTTPS", "0")
# Readable failure output; tests/test_logs.py asks its server for JSON explicitly.
os.environ.setdefault("LOG_FORMAT", "plain")

# The test process itself runs one request at a time: plain connections, as pytest-django expects.
# (Servers started by the e2e tests get the pool: bench/harness.py base_env sets their environment.)
os.environ.setdefault("DB_POOL_MAX_SIZE", "0")
# No alert ticker in the test process: tests call dispatch.alerts.alerts_tick with an explicit time.
# (Servers started by the e2e tests tick only where a test sets ALERT_TICK_S: bench/harness.py base_env.)
os.environ["ALERT_TICK_S"] = "0"

# Under pytest-xdist (make test runs two workers) each worker is its own test process: its own
# channel-layer and cache keys on a shared Redis, so one worker's group messages never reach the
# other's sockets. (pytest-django already gives each worker its own test database.)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["CHANNEL_LAYER_PREFIX"] = os.environ.get("CHANNEL_LAYER_PREFIX", "onekey120") + "-" + os.environ["PYTEST_XDIST_WORKER"]

from config.settings import *  # noqa: E402,F401,F403
