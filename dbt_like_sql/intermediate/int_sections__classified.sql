-- Sections with grade number, normalized subject, course and term names, and the first rule
-- that excludes them: school scope, subject scope, grade, then the primary teacher. A subject
-- the rules do not keep comes before the grade: the section is dropped by design either way, so
-- a bad grade on it is nothing for the school to fix.
with sections as ({{ district_slice(ref('stg_clever__sections'), where=changed('section', 'section_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),
subject_names as ({{ district_slice(ref('rules_subject_names'), columns='clever_subject, subject') }}),
subjects_kept as ({{ district_slice(ref('rules_subjects_kept'), columns='subject') }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), columns='teacher_id, exclusion_reason') }}),
courses as ({{ district_slice(ref('stg_clever__courses'), columns='course_id, name') }}),
terms as ({{ district_slice(ref('stg_clever__terms'), columns='term_id, name') }}),
graded as ({{ with_grade('sections', ref('rules_grades')) }}),

described as (
    select
        graded.*,
        coalesce(subject_names.subject, nullif(lower(trim(graded.subject_raw)), '')) as subject,
        courses.name as course_name,
        terms.name as term_name
    from graded
    left join subject_names on subject_names.clever_subject = lower(trim(graded.subject_raw))
    left join courses on courses.course_id = graded.course_id
    left join terms on terms.term_id = graded.term_id
),

final as (
    select
        described.*,
        teachers.exclusion_reason as teacher_exclusion_reason,
        case
            when described.section_id is null then 'ID_MISSING'
            when described.clever_district_id is not null and described.clever_district_id <> described.district_id
                then 'DISTRICT_MISMATCH'
            when coalesce(schools.in_scope, false) = false then 'SCHOOL_NOT_IN_SCOPE'
            when described.subject is null or described.subject not in (select subject from subjects_kept)
                then 'SECTION_SUBJECT_NOT_IN_SCOPE'
            when described.grade_reason is not null then described.grade_reason
            when teachers.teacher_id is null or teachers.exclusion_reason is not null then 'SECTION_TEACHER_EXCLUDED'
        end as exclusion_reason
    from described
    left join schools on schools.school_id = described.school_id
    left join teachers on teachers.teacher_id = described.teacher_id
)

select * from final
