{#- How the rules read Clever's values. -#}

{#- Why a grade is not processed (NULL when it is), from the rules' grade crosswalk joined as `crosswalk`:
    empty or missing → GRADE_MISSING; not in the crosswalk → GRADE_NOT_NUMERIC; else the crosswalk's
    own code (GRADE_OTHER, GRADE_POST_GRAD, ... or NULL for a processed grade). -#}
{% macro grade_reason(raw, crosswalk) -%}
case when {{ raw }} is null or trim({{ raw }}) = '' then 'GRADE_MISSING' when {{ crosswalk }}.clever_value is null then 'GRADE_NOT_NUMERIC' else {{ crosswalk }}.reason_code end
{%- endmacro %}

{#- Why a record was kept out of the district whose token loaded it. -#}
{% macro mismatch_detail() -%}
'the object says district ' || clever_district_id || ', but it was loaded with the token of district ' || district_id
{%- endmacro %}

{#- Clever's yes/no flags (v3.1's iep_status is free text, and SISes spell the others their own way):
    Y, Yes, True, 1 true; N, No, False, 0 false, in any case and with spaces around; anything else NULL
    (rejected_records counts those: see flag_unrecognized). -#}
{% macro yes_no(expr) -%}
case when lower(trim({{ expr }})) in ('y', 'yes', 'true', '1') then true
     when lower(trim({{ expr }})) in ('n', 'no', 'false', '0') then false end
{%- endmacro %}

{#- Clever's free/reduced lunch status: free, reduced, paid or other (any case); anything else NULL. -#}
{% macro frl_value(expr) -%}
case when lower(trim({{ expr }})) in ('free', 'reduced', 'paid', 'other') then lower(trim({{ expr }})) end
{%- endmacro %}

{#- A value is there (not empty) but the mapping above turned it into NULL. -#}
{% macro value_unrecognized(expr, mapped) -%}
(trim({{ expr }}) <> '' and {{ mapped }} is null)
{%- endmacro %}

{#- A person's name as one text, for rejected_records.record_name. -#}
{% macro person_name() -%}
coalesce(first_name, '') || ' ' || coalesce(last_name, '')
{%- endmacro %}

{#- The columns that say which record rejected_records is about (`sis_id`: how the school pages name
    people, whose names stay in the warehouse). -#}
{% macro record_columns(entity, record_id, record_name, sis_id='sis_id') -%}
district_id, '{{ entity }}' as entity, {{ record_id }} as record_id, {{ record_name }} as record_name, school_id,
{{ sis_id }} as sis_id
{%- endmacro %}

{#- The rows with their grade number and, when the grade is not processed, its reason code, from the
    rules' grade crosswalk (`rules_grades`: the rules profile's [grades] numbers and excluded values). -#}
{% macro with_grade(rows, crosswalk) -%}
select {{ rows }}.*, grades.grade, {{ grade_reason(rows ~ '.grade_raw', 'grades') }} as grade_reason
    from {{ rows }}
    left join ({{ district_slice(crosswalk, columns='clever_value, grade, reason_code') }}) as grades
        on grades.clever_value = trim({{ rows }}.grade_raw)
{%- endmacro %}
