"""One simulation engine for the demo (`manage.py simulate`, wall clock) and the replay
(`manage.py replay`, virtual clock): simulated callers, dispatchers and crews driving the real
services, so every stamp is the one the service records."""
