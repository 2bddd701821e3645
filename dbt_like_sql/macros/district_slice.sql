{#- The rows of the district being built: every model reads its inputs this way (a table model
    holds one slice per district, and a model that forgot the filter would read them all). -#}
{% macro district_slice(relation, columns='*', where=none) -%}
select {{ columns }} from {{ relation }} where district_id = {{ district_id() }}{% if where %} and ({{ where }}){% endif %}
{%- endmacro %}
