"""honey_duck: one sales pipeline landed in every common destination, one asset group each."""

import warnings

# Single-run backfills are why the monthly assets exist; Dagster marks the parameter beta and
# would print the notice once per process that loads the code location (the webserver, the
# daemon, every run worker). Deliberate, so silenced here, and only this notice.
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta"
)
