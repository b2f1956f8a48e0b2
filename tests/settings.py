"""The real settings, with a throwaway SECRET_KEY when the environment gives none."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)

from config.settings import *  # noqa: E402,F401,F403
