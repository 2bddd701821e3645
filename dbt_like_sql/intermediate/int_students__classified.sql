-- Students with their grade number, normalized email, parsed birth date, and the first rule
-- that excludes them (NULL when kept).
with students as ({{ district_slice(ref('stg_clever__students'), where=changed('student', 'student_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),
graded as ({{ with_grade('students', ref('rules_grades')) }}),

normalized as (
    select
        graded.*,
        nullif(lower(trim(email_raw)), '') as email_normalized,
        {{ parse_birth_date('dob_raw') }} as birth_date_parsed
    from graded
),

final as (
    select
        normalized.*,
        case
            when normalized.student_id is null then 'ID_MISSING'
            when normalized.clever_district_id is not null and normalized.clever_district_id <> normalized.district_id
                then 'DISTRICT_MISMATCH'
            when coalesce(schools.in_scope, false) = false then 'SCHOOL_NOT_IN_SCOPE'
            else grade_reason
        end as exclusion_reason,
        coalesce(email_normalized is not null
                 and not {{ regex_match('email_normalized', param('student_email_pattern')) }}, false) as email_invalid,
        (dob_raw is not null and trim(dob_raw) <> '' and birth_date_parsed is null) as dob_invalid
    from normalized
    left join schools on schools.school_id = normalized.school_id
)

select * from final
