{#- The columns every staging model starts from. -#}

{#- A Clever object's identity: the district whose token loaded it, its id under the model's name
    for it, and the district the object itself names (they differ for a DISTRICT_MISMATCH). -#}
{% macro clever_ids(id_name, with_clever_district=true) -%}
district_id, id as {{ id_name }}{% if with_clever_district %}, district as clever_district_id{% endif %}
{%- endmacro %}

{#- Text columns as Clever sends them, trimmed, with empty text as NULL (dlt's Postgres loader
    already turns empty strings into NULL; DuckDB keeps them: both must read the same). -#}
{% macro trimmed() -%}
{%- for column in varargs -%}
nullif(trim({{ column }}), '') as {{ column }}{% if not loop.last %}, {% endif %}
{%- endfor -%}
{%- endmacro %}
