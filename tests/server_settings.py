"""The settings of the servers the end-to-end and browser tests start (tests/support/servers.py
base_env): the real config.settings, read from the same environment, with one change. A strong
password hash costs a quarter of a CPU second per sign-in, and those tests sign in a hundred
times; nothing they check depends on the hash's strength (tests/test_production_settings.py
checks the real settings)."""

from config.settings import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
