"""The sink core on its own: settings, partition slices, validation, schema policy, batches."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from honey_duck import seam

MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2025-01-01")
CHANNELS = dg.StaticPartitionsDefinition(["gallery", "online", "auction"])
MULTI = dg.MultiPartitionsDefinition({"month": MONTHLY, "channel": CHANNELS})


def test_settings_default_to_replace_and_strict() -> None:
    settings = seam.WriteSettings.from_metadata({})
    assert settings.mode is seam.WriteMode.REPLACE
    assert settings.schema_policy is seam.SchemaPolicy.STRICT


def test_output_metadata_overrides_definition_metadata() -> None:
    settings = seam.WriteSettings.from_metadata(
        {"write_mode": "replace", **{"write_mode": dg.MetadataValue.text("append")}}
    )
    assert settings.mode is seam.WriteMode.APPEND


def test_upsert_needs_keys_and_bad_modes_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="upsert_keys"):
        seam.WriteSettings.from_metadata({"write_mode": "upsert"})
    with pytest.raises(ValueError, match=r"\['replace', 'append', 'upsert'\]"):
        seam.WriteSettings.from_metadata({"write_mode": "merge"})
    assert seam.WriteSettings.from_metadata({"write_mode": "upsert", "upsert_keys": "id"}).keys == (
        "id",
    )


def test_a_contiguous_month_range_is_one_window() -> None:
    partitions = seam.slice_for(MONTHLY, ["2024-02-01", "2024-03-01"], "d", "t")
    frame = pl.DataFrame(
        {"d": [date(2024, 1, 31), date(2024, 2, 1), date(2024, 3, 31), date(2024, 4, 1)]}
    )
    inside = frame.select(partitions.predicate(frame.schema)).to_series().to_list()
    assert inside == [False, True, True, False]
    assert partitions.label() == "2024-02-01..2024-03-01 (2 partitions)"


def test_gaps_between_partitions_are_not_bridged() -> None:
    partitions = seam.slice_for(MONTHLY, ["2024-01-01", "2024-03-01"], "d", "t")
    frame = pl.DataFrame({"d": [date(2024, 1, 15), date(2024, 2, 15), date(2024, 3, 15)]})
    inside = frame.select(partitions.predicate(frame.schema)).to_series().to_list()
    assert inside == [True, False, True]


def test_multi_partitions_are_an_exact_key_set_not_a_bounding_box() -> None:
    keys = [
        dg.MultiPartitionKey({"month": "2024-01-01", "channel": "online"}),
        dg.MultiPartitionKey({"month": "2024-02-01", "channel": "gallery"}),
    ]
    partitions = seam.slice_for(MULTI, keys, {"month": "d", "channel": "c"}, "t")
    frame = pl.DataFrame(
        {
            "d": [date(2024, 1, 5), date(2024, 2, 5), date(2024, 1, 5), date(2024, 2, 5)],
            "c": ["online", "gallery", "gallery", "online"],
        }
    )
    inside = frame.select(partitions.predicate(frame.schema)).to_series().to_list()
    assert inside == [True, True, False, False]  # the box corners are excluded


def test_partitioned_assets_must_name_their_column() -> None:
    with pytest.raises(ValueError, match="partition_expr"):
        seam.slice_for(MONTHLY, ["2024-01-01"], None, "sales")
    with pytest.raises(ValueError, match="mapping"):
        seam.slice_for(MULTI, [], "d", "sales")


def test_datetime_columns_compare_in_their_own_time_zone() -> None:
    partitions = seam.slice_for(MONTHLY, ["2024-02-01"], "t", "x")
    frame = pl.DataFrame(
        {"t": pl.Series(["2024-01-31 23:30", "2024-02-01 00:30"]).str.to_datetime()}
    ).with_columns(aware=pl.col("t").dt.replace_time_zone("UTC"))
    naive = frame.select(partitions.predicate(frame.schema)).to_series().to_list()
    assert naive == [False, True]
    aware = seam.slice_for(MONTHLY, ["2024-02-01"], "aware", "x")
    assert frame.select(aware.predicate(frame.schema)).to_series().to_list() == [False, True]


def test_static_keys_are_typed_like_their_column_and_must_be_spelled_as_it_spells() -> None:
    assert seam.typed_key("store", "7", pl.Int64()) == 7
    assert seam.typed_key("day", "2024-01-31", pl.Date()) == date(2024, 1, 31)
    assert seam.typed_key("name", "007", pl.String()) == "007"
    with pytest.raises(ValueError, match=r"'07' is not how column `store` .* spells 7"):
        seam.typed_key("store", "07", pl.Int64())
    with pytest.raises(ValueError, match="cannot be a value of column `store`"):
        seam.typed_key("store", "seven", pl.Int64())
    assert seam.typed_key("paid", "true", pl.Boolean()) is True
    with pytest.raises(ValueError, match="name the partitions 'true' and 'false'"):
        seam.typed_key("paid", "yes", pl.Boolean())
    stores = dg.StaticPartitionsDefinition(["7", "8"])
    frame = pl.DataFrame({"store": [7, 8, 70], "v": [1, 2, 3]})
    part = seam.slice_for(stores, ["7"], "store", "t").parts[0]
    assert frame.filter(part.predicate(frame.schema))["v"].to_list() == [1]


def test_validate_counts_rows_per_partition() -> None:
    partitions = seam.slice_for(MONTHLY, ["2024-01-01", "2024-02-01"], "d", "t")
    frame = pl.LazyFrame({"d": [date(2024, 1, 1), date(2024, 1, 9), date(2024, 2, 2)]})
    checked = seam.validate(frame, seam.WriteSettings(), partitions)
    assert checked.rows == 3
    assert checked.rows_by_part == {"2024-01-01": 2, "2024-02-01": 1}


def test_validate_refuses_rows_outside_the_partitions() -> None:
    partitions = seam.slice_for(MONTHLY, ["2024-01-01"], "d", "t")
    frame = pl.LazyFrame({"d": [date(2024, 1, 1), date(2024, 5, 1), None]})
    with pytest.raises(ValueError, match="2 rows fall outside partitions 2024-01-01") as info:
        seam.validate(frame, seam.WriteSettings(), partitions)
    assert "the first is row 1;" in str(info.value) and "2024, 5" not in str(info.value)


def test_validate_refuses_duplicate_and_null_upsert_keys() -> None:
    upsert = seam.WriteSettings(seam.WriteMode.UPSERT, keys=("id",))
    with pytest.raises(ValueError, match=r"1 upsert keys \['id'\] appear more than once"):
        seam.validate(pl.LazyFrame({"id": [1, 2, 2]}), upsert, None)
    with pytest.raises(ValueError, match="null in upsert keys"):
        seam.validate(pl.LazyFrame({"id": [1, None]}), upsert, None)
    with pytest.raises(ValueError, match="not in the data"):
        seam.validate(pl.LazyFrame({"other": [1]}), upsert, None)


def test_validate_checks_keys_of_any_mode_when_asked() -> None:
    replace = seam.WriteSettings(seam.WriteMode.REPLACE, keys=("id",))
    dupes = pl.LazyFrame({"id": [1, 2, 2]})
    assert seam.validate(dupes, replace, None).rows == 3  # keys of a replace: not by default
    with pytest.raises(ValueError, match=r"1 upsert keys \['id'\] appear more than once"):
        seam.validate(dupes, replace, None, unique_keys=True)
    with pytest.raises(ValueError, match="null in upsert keys"):
        seam.validate(pl.LazyFrame({"id": [1, None]}), replace, None, unique_keys=True)
    two = seam.WriteSettings(seam.WriteMode.REPLACE, keys=("a", "b"))
    pairs = pl.LazyFrame({"a": [1, 1, 1, 2], "b": [1, 2, 2, 1]})
    with pytest.raises(ValueError, match=r"1 upsert keys \['a', 'b'\] appear more than once"):
        seam.validate(pairs, two, None, unique_keys=True)
    secret = pl.LazyFrame({"id": ["x", "hunter2", "y", "hunter2", "hunter2"]})
    with pytest.raises(ValueError, match=r"the first is rows 1 and 3\)") as info:  # never the key
        seam.validate(secret, seam.WriteSettings(seam.WriteMode.UPSERT, keys=("id",)), None)
    assert "hunter2" not in str(info.value)
    assert seam.validate(pairs.head(2), two, None, unique_keys=True).rows == 2
    assert seam.validate(pl.LazyFrame({"id": []}), replace, None, unique_keys=True).rows == 0


def test_strict_policy_describes_every_column_that_differs() -> None:
    stored = {"id": pl.Int64, "price": pl.Decimal(18, 2), "gone": pl.String}
    incoming = {"id": pl.Int64, "price": pl.Float64, "new": pl.Boolean}
    with pytest.raises(ValueError) as caught:
        seam.check_schema(stored, incoming, seam.SchemaPolicy.STRICT, "`sales`")
    message = str(caught.value)
    assert "column `new` is new (Boolean)" in message
    assert "column `gone` (String) is missing from the data" in message
    assert "column `price` is Float64 in the data but Decimal(precision=18, scale=2)" in message


def test_evolve_adds_columns_but_never_changes_a_type() -> None:
    stored = {"id": pl.Int64, "name": pl.String}
    evolved = seam.check_schema(
        stored, {"id": pl.Int64, "extra": pl.Float64}, seam.SchemaPolicy.EVOLVE, "t"
    )
    assert evolved == {"id": pl.Int64, "name": pl.String, "extra": pl.Float64}
    with pytest.raises(ValueError, match="`id` is String in the data but Int64"):
        seam.check_schema(stored, {"id": pl.String}, seam.SchemaPolicy.EVOLVE, "t")


def test_conform_orders_columns_and_fills_typed_nulls() -> None:
    target = pl.Schema({"a": pl.Int64, "b": pl.Date, "c": pl.String})
    out = seam.conform(pl.LazyFrame({"c": ["x"], "a": [1]}), target).collect()
    assert out.schema == target
    assert out.row(0) == (1, None, "x")


def test_schema_json_keeps_every_detail() -> None:
    schema = pl.Schema(
        {
            "d": pl.Decimal(12, 3),
            "t": pl.Datetime("ms", "Europe/Paris"),
            "l": pl.List(pl.Struct({"x": pl.Int16})),
        }
    )
    assert seam.schema_from_json(seam.schema_to_json(schema)) == schema


def test_combine_upsert_replaces_matching_keys_and_keeps_the_rest() -> None:
    existing = pl.LazyFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    incoming = pl.LazyFrame({"id": [2, 4], "v": ["B", "D"]})
    upsert = seam.WriteSettings(seam.WriteMode.UPSERT, keys=("id",))
    out = seam.combine(existing, incoming, upsert).collect().sort("id")
    assert out.rows() == [(1, "a"), (2, "B"), (3, "c"), (4, "D")]
    appended = seam.combine(existing, incoming, seam.WriteSettings(seam.WriteMode.APPEND))
    assert appended.collect().height == 5


def test_lazy_frames_stream_in_bounded_batches() -> None:
    frame = pl.LazyFrame({"i": range(10_000)}).with_columns(j=pl.col("i") * 2)
    sizes = [b.height for b in seam.iter_batches(frame, 1_000)]
    assert sum(sizes) == 10_000
    assert max(sizes) <= 1_000
    assert [b.height for b in seam.iter_batches(frame.collect(), 3_000)] == [3000] * 3 + [1000]


def test_metadata_names_rows_by_partitioning() -> None:
    common = dict(
        table="json.t",
        uri="/x",
        storage_kind="json",
        schema={"a": pl.Int64},
        rows=3,
        settings=seam.WriteSettings(),
        seconds=0.5,
    )
    flat = seam.output_metadata(**common)
    assert flat["dagster/row_count"].value == 3
    assert flat["dagster/column_schema"].columns[0].type == "Int64"
    partitions = seam.slice_for(MONTHLY, ["2024-01-01"], "d", "t")
    assert "dagster/partition_row_count" in seam.output_metadata(**common, partitions=partitions)
    months = seam.slice_for(MONTHLY, ["2024-01-01", "2024-02-01"], "d", "t")
    ranged = seam.output_metadata(**common, partitions=months)
    assert "dagster/partition_row_count" not in ranged  # never a range total per partition
    assert ranged["honey_duck/range_row_count"].value == 3
    assert ranged["honey_duck/range"] == "2024-01-01..2024-02-01 (2 partitions)"


def test_a_refusal_names_the_column_and_the_row_but_never_the_value() -> None:
    frame = pl.LazyFrame({"id": [1, 2, 3], "secret": ["ok", "hunter2\x00", "fine"]})
    refusal = seam.Refusal("secret", seam.column("secret").str.contains("\x00"), "no NUL here")
    with pytest.raises(ValueError) as refused:
        seam.validate(frame, seam.WriteSettings(), None, [refusal])
    message = str(refused.value)
    assert message == "column `secret`: no NUL here (1 row, the first is row 1)"
    assert "hunter2" not in message
