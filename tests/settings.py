"""The real settings, with a throwaway SECRET_KEY when the environment gives none."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)
# Health archive keys for tests only (fixed, public, worthless): one KEK "t1" and the blind-index key.
os.environ.setdefault("HEALTH_KEYS", "t1:33YaDSQXIMeZKWjnEQEcK4bW2+CtliKaz5hx0v0afMM=")
os.environ.setdefault("HEALTH_BLIND_INDEX_KEY", "SA2n6K2CnyJcpeNQb6wuIMRMictUKtt6nyf2iLT1a0s=")

# The test process itself runs one request at a time: plain connections, as pytest-django expects.
# (Servers started by the e2e tests get the pool: tests/servers.py sets their environment.)
os.environ.setdefault("DB_POOL_MAX_SIZE", "0")

from config.settings import *  # noqa: E402,F401,F403
