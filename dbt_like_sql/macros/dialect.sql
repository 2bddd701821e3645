{#- Where DuckDB and Postgres disagree, like dbt's adapter-dispatched macros: `dialect` is the
    warehouse the SQL is rendered for ("duckdb" or "postgres"). -#}

{% macro regex_match(expr, pattern) -%}
{%- if dialect == 'duckdb' -%} regexp_matches({{ expr }}, {{ pattern }}) {%- else -%} ({{ expr }} ~ {{ pattern }}) {%- endif -%}
{%- endmacro %}

{#- Clever's M/D/YYYY (one or two digit month and day) or an ISO date; NULL if invalid. -#}
{% macro parse_birth_date(expr) -%}
{%- if dialect == 'duckdb' -%}
coalesce(try_strptime(trim({{ expr }}), '%m/%d/%Y'), try_strptime(trim({{ expr }}), '%Y-%m-%d'))::date
{%- else -%}
roster_build.try_parse_birth_date({{ expr }})
{%- endif -%}
{%- endmacro %}

{#- An ISO 8601 time (Clever's last_sync, pause_start/pause_end) as a timestamp with time zone; NULL if invalid. -#}
{% macro parse_timestamp(expr) -%}
{%- if dialect == 'duckdb' -%}
try_cast(nullif(trim({{ expr }}), '') as timestamp with time zone)
{%- else -%}
roster_build.try_parse_timestamptz({{ expr }})
{%- endif -%}
{%- endmacro %}

{#- Set-returning: one row per string in a JSON list column (stored as JSON text). -#}
{% macro json_list_elements(expr) -%}
{%- if dialect == 'duckdb' -%} unnest(from_json({{ expr }}, '["VARCHAR"]')) {%- else -%} jsonb_array_elements_text(cast({{ expr }} as jsonb)) {%- endif -%}
{%- endmacro %}

{% macro json_list_length(expr) -%}
{%- if dialect == 'duckdb' -%} coalesce(json_array_length({{ expr }}), 0) {%- else -%} coalesce(jsonb_array_length(cast({{ expr }} as jsonb)), 0) {%- endif -%}
{%- endmacro %}
