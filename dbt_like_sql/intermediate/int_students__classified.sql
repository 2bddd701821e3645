-- Students with their grade number, normalized email, parsed birth date, and the first rule
-- that excludes them (NULL when kept). An email is invalid when it fails the rules profile's
-- pattern or email-validator's syntax check (the refused ones are listed by the roster step).
with students as ({{ district_slice(ref('stg_clever__students'), where=changed('student', 'student_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),
refused as ({{ district_slice(source('pipeline', 'invalid_emails'), columns='email, reason') }}),
graded as ({{ with_grade('students', ref('rules_grades')) }}),

normalized as (
    select
        graded.*,
        nullif(lower(trim(email_raw)), '') as email_normalized,
        {{ parse_birth_date('dob_raw') }} as birth_date_parsed
    from graded
),

judged as (  -- why the email is not a valid address (NULL when it is, or when there is none)
    select
        normalized.*,
        case
            when email_normalized is null then null
            when not {{ regex_match('email_normalized', param('student_email_pattern')) }}
                then 'it does not match the rules profile''s student_pattern'
            else refused.reason
        end as email_problem
    from normalized
    left join refused on refused.email = normalized.email_normalized
),

final as (
    select
        judged.*,
        case
            when judged.student_id is null then 'ID_MISSING'
            when judged.clever_district_id is not null and judged.clever_district_id <> judged.district_id
                then 'DISTRICT_MISMATCH'
            when coalesce(schools.in_scope, false) = false then 'SCHOOL_NOT_IN_SCOPE'
            else grade_reason
        end as exclusion_reason,
        email_problem is not null as email_invalid,
        (dob_raw is not null and trim(dob_raw) <> '' and birth_date_parsed is null) as dob_invalid
    from judged
    left join schools on schools.school_id = judged.school_id
)

select * from final
