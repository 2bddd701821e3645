-- Every record the rules kept out of the roster, and every field they emptied, with the
-- reason code (see seeds/reason_codes.csv) and a detail naming the offending value.
-- Empty and null values are one case ("missing"): dlt's Postgres loader (CSV COPY with
-- FORCE_NULL) turns empty strings into NULL, and both warehouses must say the same thing.
{#- A record without a Clever id is named by its SIS id, which the district can find and fix. -#}
{% macro record_id(id_column) -%}
coalesce({{ id_column }}, 'sis_id:' || sis_id, '(no id, no sis_id)')
{%- endmacro %}
{% macro id_missing_detail() -%}
'the record has no Clever id (SIS id ' || coalesce(sis_id, 'missing too') || ')'
{%- endmacro %}
{#- New ids whose match to someone who left was ambiguous (written by publishing/identities.py). -#}
{% macro ambiguities(entity) -%}
select record_id as ambiguous_id, other_ids, why from {{ source('pipeline', 'identity_ambiguities') }}
where district_id = {{ district_id() }} and entity = '{{ entity }}'
{%- endmacro %}
with students as ({{ district_slice(ref('int_students__classified'), where=changed('student', 'student_id')) }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), where=changed('teacher', 'teacher_id')) }}),
sections as ({{ district_slice(ref('int_sections__classified'), where=changed('section', 'section_id')) }}),
section_teachers as ({{ district_slice(ref('int_section_teachers__classified'),
                                      where='exclusion_reason is not null and ' ~ changed('section', 'section_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped')) }}),
admins as ({{ district_slice(ref('int_admins__scoped')) }}),

excluded_schools as (
    select {{ record_columns('school', 'school_id', 'name') }}, exclusion_reason as reason_code, 'excluded' as action,
        case exclusion_reason
            when 'DISTRICT_MISMATCH' then {{ mismatch_detail() }}
            else 'school ' || coalesce(name, school_id) || ' is not in the district''s school scope'
        end as detail
    from schools
    where not in_scope
),

excluded_students as (
    select {{ record_columns('student', record_id('student_id'), person_name()) }}, exclusion_reason as reason_code,
        'excluded' as action,
        case
            when exclusion_reason = 'ID_MISSING' then {{ id_missing_detail() }}
            when exclusion_reason = 'DISTRICT_MISMATCH' then {{ mismatch_detail() }}
            when exclusion_reason = 'SCHOOL_NOT_IN_SCOPE'
                then 'school ' || coalesce(school_id, '(none)') || ' is not in scope or not shared'
            when exclusion_reason = 'GRADE_MISSING' then 'grade is missing (empty or null)'
            else 'grade is "' || grade_raw || '"'
        end as detail
    from students
    where exclusion_reason is not null
),

nulled_student_fields as (  -- kept students whose invalid email or birth date was emptied
    select {{ record_columns('student', 'student_id', person_name()) }}, 'STUDENT_EMAIL_INVALID' as reason_code,
        'field_nulled' as action,
        'email "' || email_raw || '" is not a valid address (' || email_problem || '); email set to NULL' as detail
    from students where exclusion_reason is null and email_invalid
    union all
    select {{ record_columns('student', 'student_id', person_name()) }}, 'STUDENT_DOB_INVALID', 'field_nulled',
        'birth date "' || dob_raw || '" is not a valid date; birth_date set to NULL'
    from students where exclusion_reason is null and dob_invalid
),

{%- set flags = [('iep_status', 'special_education'), ('ell_status', 'ell'), ('section_504_status', 'section_504'),
                 ('gifted_status', 'gifted')] %}
odd_demographics as (  -- kept students with a demographic value the rules cannot read (one pass over them)
    select * from students
    where exclusion_reason is null and (
        {%- for field, _ in flags %}{{ value_unrecognized(field, yes_no(field)) }} or {% endfor -%}
        {{ value_unrecognized('frl_status', frl_value('frl_status')) }})
),

unrecognized_demographics as (  -- one row per student and field, NULL in demographics; the detail names
    -- the field, never the value: rejected_records is not restricted like demographics
    {%- for field, column in flags %}
    select {{ record_columns('student', 'student_id', person_name()) }}, 'DEMOGRAPHIC_VALUE_UNRECOGNIZED' as reason_code,
        'field_nulled' as action,
        '{{ field }} is not a yes/no value (Y/N, Yes/No, True/False, 1/0); demographics.{{ column }} set to NULL' as detail
    from odd_demographics where {{ value_unrecognized(field, yes_no(field)) }}
    union all
    {%- endfor %}
    select {{ record_columns('student', 'student_id', person_name()) }}, 'DEMOGRAPHIC_VALUE_UNRECOGNIZED', 'field_nulled',
        'frl_status is not Free, Reduced, Paid or Other; demographics.frl_status and frl_eligible set to NULL'
    from odd_demographics where {{ value_unrecognized('frl_status', frl_value('frl_status')) }}
),

district_notices as (  -- about the whole district: its students carry no demographics (see prepared.py)
    select cast({{ district_id() }} as varchar) as district_id, 'district' as entity,
        cast({{ district_id() }} as varchar) as record_id, cast(null as varchar) as record_name,
        cast(null as varchar) as school_id, cast(null as varchar) as sis_id,
        'DEMOGRAPHICS_NOT_SHARED' as reason_code, 'notice' as action,
        'no student of the district carries any demographic field (ell_status, frl_status, iep_status, '
        || 'section_504_status, gifted_status, home_language); demographics has no rows for it' as detail
    where {{ param('demographics_shared') }} = 'no'
),

excluded_teachers as (
    select {{ record_columns('teacher', record_id('teacher_id'), person_name()) }}, exclusion_reason as reason_code,
        'excluded' as action,
        case exclusion_reason
            when 'ID_MISSING' then {{ id_missing_detail() }}
            when 'DISTRICT_MISMATCH' then {{ mismatch_detail() }}
            when 'SCHOOL_NOT_IN_SCOPE' then 'school ' || coalesce(school_id, '(none)') || ' is not in scope or not shared'
            when 'TEACHER_EMAIL_MISSING' then 'email is missing (empty or null)'
            when 'TEACHER_EMAIL_INVALID' then 'email "' || email_raw || '" is not a valid address (' || email_problem || ')'
            else 'email "' || email || '" is also used by ' || shared_with
        end as detail
    from teachers
    where exclusion_reason is not null
),

excluded_sections as (
    select {{ record_columns('section', record_id('section_id'), 'name') }}, exclusion_reason as reason_code,
        'excluded' as action,
        case exclusion_reason
            when 'ID_MISSING' then {{ id_missing_detail() }}
            when 'DISTRICT_MISMATCH' then {{ mismatch_detail() }}
            when 'SCHOOL_NOT_IN_SCOPE' then 'school ' || coalesce(school_id, '(none)') || ' is not in scope or not shared'
            when 'SECTION_SUBJECT_NOT_IN_SCOPE' then 'subject is "' || coalesce(subject_raw, '') || '"'
            when 'SECTION_TEACHER_EXCLUDED' then
                case
                    when teacher_id is null then 'the section has no primary teacher'
                    when teacher_exclusion_reason is null then 'primary teacher ' || teacher_id || ' is not in the roster'
                    else 'primary teacher ' || teacher_id || ' was excluded (' || teacher_exclusion_reason || ')'
                end
            when 'GRADE_MISSING' then 'grade is missing (empty or null)'
            else 'grade is "' || grade_raw || '"'
        end as detail
    from sections
    where exclusion_reason is not null
),

dropped_coteachers as (  -- kept sections, published without a co-teacher who is not a kept teacher
    select section_teachers.district_id, section_teachers.section_id, section_teachers.school_id, sections.name,
        sections.sis_id, section_teachers.teacher_id, section_teachers.teacher_exclusion_reason,
        section_teachers.exclusion_reason
    from section_teachers
    inner join sections on sections.section_id = section_teachers.section_id
),

left_out_coteachers as (
    select {{ record_columns('section', 'section_id', 'name') }}, exclusion_reason as reason_code, 'link_dropped' as action,
        case
            when teacher_exclusion_reason is null then 'co-teacher ' || teacher_id || ' is not in the roster'
            else 'co-teacher ' || teacher_id || ' was excluded (' || teacher_exclusion_reason || ')'
        end as detail
    from dropped_coteachers
),

excluded_admins as (
    select {{ record_columns('admin', 'user_id', person_name(), 'cast(null as varchar)') }}, exclusion_reason as reason_code, 'excluded' as action,
        'school ' || school_id || ' is not in scope or not shared' as detail
    from admins where exclusion_reason is not null
),

unlinked_people as (  -- new ids kept as new people: their match to someone who left was ambiguous
    select {{ record_columns('student', 'student_id', person_name()) }}, 'IDENTITY_AMBIGUOUS' as reason_code,
        'not_linked' as action, 'not linked to ' || other_ids || ': ' || why as detail
    from students join ({{ ambiguities('student') }}) as a on a.ambiguous_id = students.student_id
    where students.exclusion_reason is null
    union all
    select {{ record_columns('teacher', 'teacher_id', person_name()) }}, 'IDENTITY_AMBIGUOUS', 'not_linked',
        'not linked to ' || other_ids || ': ' || why
    from teachers join ({{ ambiguities('teacher') }}) as a on a.ambiguous_id = teachers.teacher_id
    where teachers.exclusion_reason is null
),

final as (
    select * from excluded_schools
    union all select * from excluded_students
    union all select * from nulled_student_fields
    union all select * from unrecognized_demographics
    union all select * from district_notices
    union all select * from excluded_teachers
    union all select * from excluded_sections
    union all select * from left_out_coteachers
    union all select * from excluded_admins
    union all select * from unlinked_people
)

select * from final
