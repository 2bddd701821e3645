"""Clever pages → Arrow tables, without walking rows in Python on the normal path.

dlt normalizes Python dicts row by row (about 18× slower than its Arrow path on a 50,000
student district), so each page of objects goes to `pyarrow.array` with an explicit struct
type, which converts the whole page in C. Only a page holding values of the wrong type (a
number where Clever promises a string, a string where it promises an object) takes the slow
path, where each such value is kept as its JSON text instead of crashing the run.
"""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from roster_pipeline.clever.settings import LIST, LIST_POSITION, ORDERED_PAIR_TABLES, SECTION_PAIR_TABLES, Column

# A child of the progress logger (source.py's PROGRESS_LOGGER), so the Dagster layer forwards it into the run's log.
log = logging.getLogger("roster_pipeline.clever.progress.pages")


def struct_type(columns: list[Column]) -> pa.StructType:
    """The nested Arrow struct that the given column paths describe."""
    tree: dict = {}
    for _, path, kind in columns:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = kind

    def build(node: dict) -> pa.StructType:
        return pa.struct([(k, build(v) if isinstance(v, dict) else v) for k, v in node.items()])

    return build(tree)


def objects_to_arrow(objects: list, columns: list[Column], district_id: str) -> pa.Table:
    """One page of Clever objects → a flat Arrow table with `district_id` first."""
    struct = struct_type(columns)
    try:
        array = pa.array(objects, type=struct)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([_coerce(obj, struct) for obj in objects], type=struct)
    arrays = [district_column(district_id, len(objects))]
    cleaned: dict[str, int] = {}
    for name, path, _ in columns:
        values, count = without_nul(pc.struct_field(array, _index(struct, path)))
        arrays.append(values)
        if count:
            cleaned[name] = count
    if cleaned:
        log.warning("NUL characters removed from %d values (%s)", sum(cleaned.values()),
                    ", ".join(f"{name}: {count}" for name, count in sorted(cleaned.items())))
    return pa.Table.from_arrays(arrays, schema=table_schema(columns))


def without_nul(values: pa.Array) -> tuple[pa.Array, int]:
    """A string (or list of strings) column without NUL characters, and how many values held one.

    Postgres text cannot hold NUL (the load would fail every night) while DuckDB keeps it; both
    warehouses get the value without it, so they publish the same. Checked in C, rebuilt only
    when a NUL is there.
    """
    strings = values.values if pa.types.is_list(values.type) else values
    found = pc.match_substring(strings, "\x00")
    count = pc.sum(found).as_py() or 0
    if not count:
        return values, 0
    clean = pc.replace_substring(strings, "\x00", "")
    if pa.types.is_list(values.type):
        return pa.ListArray.from_arrays(values.offsets, clean, mask=values.is_null()), count
    return clean, count


def lists_as_json(table: pa.Table, keep: set[str] = frozenset()) -> pa.Table:
    """List-of-string columns → JSON text, in Arrow (every warehouse loads text; not all load lists).

    Strings are escaped for JSON vectorized; the rare page with control characters in a list
    element is serialized by orjson instead, value by value.
    """
    for position, field in enumerate(table.schema):
        if field.type != LIST or field.name in keep:
            continue
        lists = table.column(position).combine_chunks()
        flat = pc.list_flatten(lists)
        if pc.any(pc.match_substring_regex(flat, r"[\x00-\x1f]")).as_py():
            text = pa.array([None if v is None else orjson.dumps(v).decode() for v in lists.to_pylist()], pa.string())
        else:
            escaped = pc.replace_substring(pc.replace_substring(flat, "\\", "\\\\"), '"', '\\"')
            quoted = pc.binary_join_element_wise('"', pc.fill_null(escaped, ""), '"', "")
            quoted = pc.if_else(pc.is_null(flat), pa.scalar("null"), quoted)
            rebuilt = pa.ListArray.from_arrays(lists.offsets, quoted, mask=pc.is_null(lists))
            text = pc.binary_join_element_wise("[", pc.binary_join(rebuilt, ","), "]", "")
        table = table.set_column(position, pa.field(field.name, pa.string()), text)
    return table


def district_column(district_id: str, length: int) -> pa.Array:
    """The same district id repeated, built in C (a Python list of millions of ids is not free)."""
    return pa.array([district_id], pa.string()).take(np.zeros(length, dtype=np.int32))


def table_schema(columns: list[Column]) -> pa.Schema:
    """Raw table schema: `district_id` (never null: it is the merge key) then the Clever columns."""
    return pa.schema([pa.field("district_id", pa.string(), nullable=False), *(pa.field(n, k) for n, _, k in columns)])


def _index(struct: pa.StructType, path: tuple[str, ...]) -> list[int]:
    indices, node = [], struct
    for key in path:
        position = node.get_field_index(key)
        indices.append(position)
        node = node.field(position).type
    return indices


def _coerce(value, kind: pa.DataType):
    """Make one value fit its Arrow type: wrong-typed scalars become their JSON text."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            return None  # a scalar where an object belongs carries none of its fields
        return {f.name: _coerce(value.get(f.name), f.type) for f in kind}
    if kind == LIST:
        items = value if isinstance(value, list) else [value]
        return [_coerce(item, pa.string()) for item in items if item is not None]
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def pair_schema(table: str) -> pa.Schema:
    """A pair table's columns: district, section, the listed id and, for an ordered list, its place in it."""
    fields = [pa.field("district_id", pa.string(), nullable=False), pa.field("section_id", pa.string()),
              pa.field(f"{SECTION_PAIR_TABLES[table][:-1]}_id", pa.string())]
    if table in ORDERED_PAIR_TABLES:
        fields.append(pa.field(LIST_POSITION, pa.int32()))
    return pa.schema(fields)


def id_pairs(sections: pa.Table, table: str, district_id: str) -> pa.Table:
    """Flatten the sections' id lists of a pair table (students or teachers) into flat rows of its schema."""
    schema = pair_schema(table)
    id_name = schema.names[2]
    lists = sections.column(SECTION_PAIR_TABLES[table]).combine_chunks()
    parents = pc.list_parent_indices(lists)
    columns = {"section_id": pc.take(sections.column("id"), parents), id_name: pc.list_flatten(lists)}
    if LIST_POSITION in schema.names:  # a value's index minus the index of its list's first value
        parent = parents.to_numpy(zero_copy_only=False)
        index = np.arange(len(parent), dtype=np.int32)
        starts = np.concatenate(([True], parent[1:] != parent[:-1])) if len(parent) else np.zeros(0, dtype=bool)
        columns[LIST_POSITION] = pa.array(index - np.maximum.accumulate(np.where(starts, index, 0)), pa.int32())
    pairs = pa.table(columns).filter(pc.is_valid(pc.field(id_name)))
    return pairs.add_column(0, schema.field("district_id"), district_column(district_id, pairs.num_rows))
