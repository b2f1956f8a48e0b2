"""Helpers the tests share, so that no test module imports another's: real servers (servers, on
bench/harness.py), the cast's users and clients (cast), the browser and its fixtures (browser),
the pages as a person drives them (pages), in-process streams and their ping/pong fence (streams),
a console's snapshots and reducer (consoles), a health archive (archives), a case step by step
(cases), racing threads (race), the demo seed (demo), local stand-ins for outside HTTP services
(stubs). conftest.py keeps the fixtures."""
