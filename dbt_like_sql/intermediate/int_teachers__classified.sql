-- Teachers with a trimmed, lower-cased email and the first rule that excludes them:
-- out-of-scope school, then missing, malformed (the rules profile's pattern, or email-validator's
-- syntax check: the refused emails are listed by the roster step) or shared email (unique per district).
-- Incremental: the teachers that changed and every teacher sharing their old or new email (see incremental.py).
with teachers as ({{ district_slice(ref('stg_clever__teachers'), where=changed('teacher', 'teacher_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),
refused as ({{ district_slice(source('pipeline', 'invalid_emails'), columns='email, reason') }}),

normalized as (
    select
        teachers.*,
        nullif(lower(trim(email_raw)), '') as email
    from teachers
),

shared as (
    select
        a.teacher_id,
        string_agg(
            coalesce(b.first_name, '') || ' ' || coalesce(b.last_name, '') || ' (' || b.teacher_id || ')',
            ', ' order by b.teacher_id
        ) as shared_with
    from normalized as a
    inner join normalized as b on a.email = b.email and a.teacher_id <> b.teacher_id
    group by a.teacher_id
),

final as (
    select
        normalized.*,
        shared.shared_with,
        case  -- why the email is not a valid address (NULL when it is, or when there is none)
            when normalized.email is null then null
            when not {{ regex_match('normalized.email', param('teacher_email_pattern')) }}
                then 'it does not match the rules profile''s teacher_pattern'
            else refused.reason
        end as email_problem,
        case
            when normalized.teacher_id is null then 'ID_MISSING'
            when normalized.clever_district_id is not null and normalized.clever_district_id <> normalized.district_id
                then 'DISTRICT_MISMATCH'
            when coalesce(schools.in_scope, false) = false then 'SCHOOL_NOT_IN_SCOPE'
            when normalized.email is null then 'TEACHER_EMAIL_MISSING'
            when not {{ regex_match('normalized.email', param('teacher_email_pattern')) }} then 'TEACHER_EMAIL_INVALID'
            when refused.email is not null then 'TEACHER_EMAIL_INVALID'
            when shared.teacher_id is not null then 'TEACHER_EMAIL_DUPLICATE'
        end as exclusion_reason
    from normalized
    left join schools on schools.school_id = normalized.school_id
    left join shared on shared.teacher_id = normalized.teacher_id
    left join refused on refused.email = normalized.email
)

select * from final
