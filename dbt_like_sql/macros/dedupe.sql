{#- One row per Clever id and district: an id served twice (within a page or across pages) keeps
    its newest copy. `distinct on` rather than row_number() = 1, because Postgres then estimates
    the result at one row per id (from the table's statistics) instead of 0.5 % of the rows, and
    plans the joins after it as hash joins, not nested loops (17 s at 1M students). -#}
{% macro dedupe(source_relation, newest_first='last_modified desc nulls last') -%}
select distinct on (district_id, id) * from {{ source_relation }} order by district_id, id{% if newest_first %}, {{ newest_first }}{% endif %}
{%- endmacro %}
