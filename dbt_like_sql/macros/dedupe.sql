{#- One row per Clever id and district: an id served twice (within a page or across pages) keeps
    its newest copy (or any one copy when no `newest_first` order is given).
    Postgres: `distinct on`, which it estimates at one row per id from the table's statistics
    (a row_number() = 1 filter is estimated at 0.5 % of the rows, and the joins after it were
    planned as nested loops). DuckDB: row_number(), which streams; its `distinct on` holds every
    wide row in a hash table (peak memory 2 → 4 GiB at 1M students).
    Rows without an id are not one object: each is kept, and rejected (ID_MISSING) by the rules. -#}
{% macro dedupe(source_relation, newest_first='last_modified desc nulls last') -%}
{{ dispatch('dedupe')(source_relation, newest_first) }}
{%- endmacro %}

{% macro postgres__dedupe(source_relation, newest_first) -%}
select * from (select distinct on (district_id, id) * from {{ source_relation }} where id is not null order by district_id, id{% if newest_first %}, {{ newest_first }}{% endif %}) as kept
union all select * from {{ source_relation }} where id is null
{%- endmacro %}

{% macro duckdb__dedupe(source_relation, newest_first) -%}
select * from {{ source_relation }} qualify row_number() over (partition by district_id, id{% if newest_first %} order by {{ newest_first }}{% endif %}) = 1 or id is null
{%- endmacro %}
