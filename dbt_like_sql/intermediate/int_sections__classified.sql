-- Sections with grade number, normalized subject, course and term names, and the first rule
-- that excludes them: school scope, subject scope, grade, then the primary teacher. A subject
-- the rules do not keep comes before the grade: the section is dropped by design either way, so
-- a bad grade on it is nothing for the school to fix. The primary teacher is Clever's `teacher`;
-- when that is empty, the first of the section's teacher list (Clever's list includes the primary).
with clever_sections as ({{ district_slice(ref('stg_clever__sections'), where=changed('section', 'section_id')) }}),
listed as ({{ district_slice(ref('stg_clever__section_teachers'), columns='section_id, teacher_id, list_position',
                             where='teacher_id is not null and ' ~ changed('section', 'section_id')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),
subject_names as ({{ district_slice(ref('rules_subject_names'), columns='clever_subject, subject') }}),
subjects_kept as ({{ district_slice(ref('rules_subjects_kept'), columns='subject') }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), columns='teacher_id, exclusion_reason') }}),
courses as ({{ district_slice(ref('stg_clever__courses'), columns='course_id, name') }}),
terms as ({{ district_slice(ref('stg_clever__terms'), columns='term_id, name') }}),

first_listed as (  -- a row loaded before the list's order was kept (no place) comes after the placed ones
    select section_id, teacher_id
    from (
        select section_id, teacher_id,
            row_number() over (partition by section_id order by list_position nulls last, teacher_id) as place
        from listed
    ) as ranked
    where place = 1
),

sections as (
    select
        clever_sections.district_id, clever_sections.section_id, clever_sections.clever_district_id,
        clever_sections.school_id, clever_sections.name, clever_sections.period, clever_sections.section_number,
        clever_sections.grade_raw, clever_sections.subject_raw, clever_sections.course_id, clever_sections.term_id,
        clever_sections.sis_id,
        coalesce(clever_sections.teacher_id, first_listed.teacher_id) as teacher_id,
        clever_sections.teacher_id is null and first_listed.teacher_id is not null as teacher_from_list
    from clever_sections
    left join first_listed on first_listed.section_id = clever_sections.section_id
),

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
