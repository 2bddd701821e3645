{#- Incremental builds (see roster_pipeline/modeling/incremental.py): the records that changed
    since the district's last publish are listed in source('pipeline', 'affected_keys'), by entity. A
    model restricts its inputs with changed(), and its yml `config.changed_rows` names the rows
    it replaces; in a full build both are simply true. -#}
{% macro changed(entity, column) -%}
{%- if is_incremental() -%}
{{ column }} in (select id from {{ source('pipeline', 'affected_keys') }} where district_id = {{ district_id() }} and entity = '{{ entity }}')
{%- else -%}
true
{%- endif -%}
{%- endmacro %}
