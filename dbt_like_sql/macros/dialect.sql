{#- Where DuckDB and Postgres disagree, as dbt's adapter-dispatched macros: `name` calls
    `dispatch('name')`, which picks `duckdb__name` or `postgres__name` for the warehouse the SQL is
    rendered for. Models call `name`; a new difference gets its three macros here, never a branch.
    (The Postgres functions `roster_build.try_parse_*` are created by roster_pipeline/warehouse/dialect.py.) -#}

{% macro regex_match(expr, pattern) -%} {{ dispatch('regex_match')(expr, pattern) }} {%- endmacro %}
{% macro duckdb__regex_match(expr, pattern) -%} regexp_matches({{ expr }}, {{ pattern }}) {%- endmacro %}
{% macro postgres__regex_match(expr, pattern) -%} ({{ expr }} ~ {{ pattern }}) {%- endmacro %}

{#- Clever's M/D/YYYY (one or two digit month and day) or an ISO date; NULL if invalid. -#}
{% macro parse_birth_date(expr) -%} {{ dispatch('parse_birth_date')(expr) }} {%- endmacro %}
{% macro duckdb__parse_birth_date(expr) -%}
coalesce(try_strptime(trim({{ expr }}), '%m/%d/%Y'), try_strptime(trim({{ expr }}), '%Y-%m-%d'))::date
{%- endmacro %}
{% macro postgres__parse_birth_date(expr) -%} roster_build.try_parse_birth_date({{ expr }}) {%- endmacro %}

{#- An ISO 8601 time (Clever's last_sync, pause_start/pause_end) as a timestamp with time zone; NULL if invalid. -#}
{% macro parse_timestamp(expr) -%} {{ dispatch('parse_timestamp')(expr) }} {%- endmacro %}
{% macro duckdb__parse_timestamp(expr) -%} try_cast(nullif(trim({{ expr }}), '') as timestamp with time zone) {%- endmacro %}
{% macro postgres__parse_timestamp(expr) -%} roster_build.try_parse_timestamptz({{ expr }}) {%- endmacro %}

{#- Set-returning: one row per string in a JSON list column (stored as JSON text). -#}
{% macro json_list_elements(expr) -%} {{ dispatch('json_list_elements')(expr) }} {%- endmacro %}
{% macro duckdb__json_list_elements(expr) -%} unnest(from_json({{ expr }}, '["VARCHAR"]')) {%- endmacro %}
{% macro postgres__json_list_elements(expr) -%} jsonb_array_elements_text(cast({{ expr }} as jsonb)) {%- endmacro %}

{% macro json_list_length(expr) -%} {{ dispatch('json_list_length')(expr) }} {%- endmacro %}
{% macro duckdb__json_list_length(expr) -%} coalesce(json_array_length({{ expr }}), 0) {%- endmacro %}
{% macro postgres__json_list_length(expr) -%} coalesce(jsonb_array_length(cast({{ expr }} as jsonb)), 0) {%- endmacro %}
