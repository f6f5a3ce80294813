"""The sink seam: the contract every honey_duck IO manager keeps, written once.

It names no destination and imports no driver. A destination adds a `Target` (what it keeps,
where an asset lives, how to connect) and a `Session` (the contract's verbs on one connection);
`SinkIOManager` owns the flow around them:

    SinkIOManager.handle_output                                   manager.py
      settings from metadata -> capability check -> partition slice -> type check
      -> one streaming validation pass                           validate.py
      -> retried as one block: with Target.session() as s:       faults.py
             s.stored_schema -> schema policy -> one verb         schema.py, target.py
      -> standard metadata                                       metadata.py
    SinkIOManager.load_input -> retried: s.read(...)

What the modules hold: `settings` (write modes, policies), `partitions` (exact slices),
`schema` (diff, policy, literal column names), `validate` (the pass, refusals), `frames`
(batches, scans), `metadata`, `faults` (retries, redaction), `records` (schema records for
targets without a catalog), `leftovers` (what dead writers leave), `dtypes` (the one type
walker), `target` (what a destination declares), `readback` (how a check reads it back) and
`reconcile/` (the check itself).
"""

from honey_duck.seam.faults import (
    PERMANENT_WORDS,
    TRANSIENT_WORDS,
    ConnectFailed,
    OutcomeUnknown,
    Retry,
    connect_failed,
    mentions_secret,
    redact,
)
from honey_duck.seam.frames import (
    as_lazy,
    combine,
    input_columns,
    is_lazy_annotation,
    iter_batches,
    scan_frames,
)
from honey_duck.seam.leftovers import (
    pid_alive,
)
from honey_duck.seam.manager import (
    SinkIOManager,
    check_assets,
    write_through,
)
from honey_duck.seam.metadata import (
    Stopwatch,
    column_schema,
    declared_descriptions,
    output_metadata,
    partition_observations,
    stopwatch,
)
from honey_duck.seam.partitions import (
    Bound,
    Part,
    PartitionSlice,
    Window,
    parts_for,
    read_slice_from_context,
    slice_for,
    slice_from_context,
    typed_key,
)
from honey_duck.seam.readback import (
    OfficialReadback,
    Readback,
    TargetReadback,
)
from honey_duck.seam.records import (
    FolderRecords,
    RecordedSchema,
    RecordStore,
    SchemaRecord,
    now,
)
from honey_duck.seam.schema import (
    SchemaDiff,
    case_clashes,
    check_schema,
    check_types,
    column,
    conform,
    diff_schemas,
    literal_name,
    schema_from_json,
    schema_to_json,
)
from honey_duck.seam.settings import (
    DEFAULT_BATCH_ROWS,
    PARTITION_EXPR,
    SCHEMA_POLICY,
    UPSERT_KEYS,
    WRITE_MODE,
    SchemaPolicy,
    SinkError,
    WriteMode,
    WriteSettings,
    metadata_value,
)
from honey_duck.seam.target import (
    Capabilities,
    Landing,
    Run,
    Session,
    Target,
    Write,
)
from honey_duck.seam.validate import (
    Checked,
    Refusal,
    validate,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "PARTITION_EXPR",
    "PERMANENT_WORDS",
    "SCHEMA_POLICY",
    "TRANSIENT_WORDS",
    "UPSERT_KEYS",
    "WRITE_MODE",
    "Bound",
    "Capabilities",
    "Checked",
    "ConnectFailed",
    "FolderRecords",
    "Landing",
    "OfficialReadback",
    "OutcomeUnknown",
    "Part",
    "PartitionSlice",
    "Readback",
    "RecordStore",
    "RecordedSchema",
    "Refusal",
    "Retry",
    "Run",
    "SchemaDiff",
    "SchemaPolicy",
    "SchemaRecord",
    "Session",
    "SinkError",
    "SinkIOManager",
    "Stopwatch",
    "Target",
    "TargetReadback",
    "Window",
    "Write",
    "WriteMode",
    "WriteSettings",
    "as_lazy",
    "case_clashes",
    "check_assets",
    "check_schema",
    "check_types",
    "column",
    "column_schema",
    "combine",
    "conform",
    "connect_failed",
    "declared_descriptions",
    "diff_schemas",
    "input_columns",
    "is_lazy_annotation",
    "iter_batches",
    "literal_name",
    "mentions_secret",
    "metadata_value",
    "now",
    "output_metadata",
    "partition_observations",
    "parts_for",
    "pid_alive",
    "read_slice_from_context",
    "redact",
    "scan_frames",
    "schema_from_json",
    "schema_to_json",
    "slice_for",
    "slice_from_context",
    "stopwatch",
    "typed_key",
    "validate",
    "write_through",
]
