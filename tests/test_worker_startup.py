"""What a worker does once, when daphne imports the ASGI application (config.asgi)."""

from __future__ import annotations

import gc


def test_it_freezes_what_the_worker_loaded_so_full_collections_skip_it():
    import config.asgi  # noqa: F401 - what daphne imports
    from config import urls

    # The permanent generation holds the modules, classes and URLconf: a full collection no
    # longer walks them (bench/README.md: ~100 ms each on the project's machine).
    assert gc.get_freeze_count() > 10_000
    assert not any(tracked is urls.urlpatterns for tracked in gc.get_objects())
