"""The Redshift sink: `dialect` (types, limits, statements), `staging` (Parquet on S3) and
`target` (the target and its IO manager)."""

from honey_duck.targets.redshift.dialect import RedshiftDialect, RedshiftOnPostgresDialect
from honey_duck.targets.redshift.staging import RedshiftStaging
from honey_duck.targets.redshift.target import RedshiftIOManager, RedshiftTarget

__all__ = [
    "RedshiftDialect",
    "RedshiftIOManager",
    "RedshiftOnPostgresDialect",
    "RedshiftStaging",
    "RedshiftTarget",
]
